export { TorchGenerator } from './generator.ts';
export { torchRandn, prepareNoise } from './prepare-noise.ts';
export { writeNoiseFile } from './noise-file.ts';
export { parseSeed, MAX_SEED } from './seed.ts';
