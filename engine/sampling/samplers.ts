import { InvalidInputError } from '../errors.ts';
import { dpm2, dpmpp2m, euler, heun, lms } from './ode-samplers.ts';
import {
  ddpm,
  dpm2Ancestral,
  dpmpp2mSdeHeun,
  dpmpp2mSdeMidpoint,
  dpmpp2sAncestral,
  dpmpp3mSde,
  dpmppSde,
  eulerAncestral,
  lcm,
} from './stochastic-samplers.ts';
import type { Sampler } from './types.ts';
import { uniPcBh1, uniPcBh2 } from './uni-pc.ts';

/**
 * The samplers by ComfyUI name, in ComfyUI's order. The `_gpu` variants differ in ComfyUI only by where their
 * Brownian tree lives, and `ddim` is ComfyUI's Euler (it differs only for inpainting masks); they are kept
 * as names so shared workflows load.
 */
const SAMPLERS = {
  euler,
  euler_ancestral: eulerAncestral,
  heun,
  dpm_2: dpm2,
  dpm_2_ancestral: dpm2Ancestral,
  lms,
  dpmpp_2s_ancestral: dpmpp2sAncestral,
  dpmpp_sde: dpmppSde,
  dpmpp_sde_gpu: dpmppSde,
  dpmpp_2m: dpmpp2m,
  dpmpp_2m_sde: dpmpp2mSdeMidpoint,
  dpmpp_2m_sde_gpu: dpmpp2mSdeMidpoint,
  dpmpp_2m_sde_heun: dpmpp2mSdeHeun,
  dpmpp_2m_sde_heun_gpu: dpmpp2mSdeHeun,
  dpmpp_3m_sde: dpmpp3mSde,
  dpmpp_3m_sde_gpu: dpmpp3mSde,
  ddpm,
  lcm,
  ddim: euler,
  uni_pc: uniPcBh1,
  uni_pc_bh2: uniPcBh2,
} satisfies Record<string, Sampler>;

export type SamplerName = keyof typeof SAMPLERS;
export const SAMPLER_NAMES = Object.keys(SAMPLERS) as readonly SamplerName[];

/** Samplers for which ComfyUI computes one extra sigma and drops the penultimate one. */
export const DISCARD_PENULTIMATE_SIGMA_SAMPLERS: ReadonlySet<SamplerName> = new Set(['dpm_2', 'dpm_2_ancestral', 'uni_pc', 'uni_pc_bh2']);

export function isSamplerName(name: string): name is SamplerName {
  return Object.hasOwn(SAMPLERS, name);
}

/** `name` as a sampler name, or an error listing the valid ones. */
export function parseSamplerName(name: string): SamplerName {
  if (!isSamplerName(name)) {
    throw new InvalidInputError(`Unknown sampler "${name}". Valid samplers: ${SAMPLER_NAMES.join(', ')}.`);
  }
  return name;
}

export function getSampler(name: string): Sampler {
  return SAMPLERS[parseSamplerName(name)];
}
