import { f32Entry, writeSafetensors } from '../safetensors/index.ts';
import { torchRandn } from './prepare-noise.ts';

/**
 * Writes `torch.manual_seed(seed); torch.randn(shape)` as a safetensors file: one F32 tensor `noise`, and
 * metadata `seed` (decimal) and `shape` (`[1, 4, 64, 64]`, as in the torch-randn fixtures), so the file can
 * be compared with noise from PyTorch or fed to other tools.
 */
export function writeNoiseFile(path: string, seed: bigint, shape: readonly number[]): void {
  const noise = torchRandn(seed, shape);
  writeSafetensors(path, [f32Entry('noise', shape, noise)], { seed: seed.toString(), shape: `[${shape.join(', ')}]` });
}
