/**
 * A1111's display names for ComfyUI's samplers and schedulers (modules/sd_samplers_kdiffusion.py,
 * sd_samplers_timesteps.py, sd_schedulers.py), for samplers that run the same algorithm in both. Names with
 * no A1111 counterpart are written as ComfyUI spells them.
 */
const SAMPLERS = new Map([
  ['euler', 'Euler'],
  ['euler_ancestral', 'Euler a'],
  ['heun', 'Heun'],
  ['dpm_2', 'DPM2'],
  ['dpm_2_ancestral', 'DPM2 a'],
  ['lms', 'LMS'],
  ['dpm_fast', 'DPM fast'],
  ['dpm_adaptive', 'DPM adaptive'],
  ['dpmpp_2s_ancestral', 'DPM++ 2S a'],
  // The _gpu variants differ only in where the SDE noise is drawn.
  ['dpmpp_sde', 'DPM++ SDE'],
  ['dpmpp_sde_gpu', 'DPM++ SDE'],
  ['dpmpp_2m', 'DPM++ 2M'],
  ['dpmpp_2m_sde', 'DPM++ 2M SDE'],
  ['dpmpp_2m_sde_gpu', 'DPM++ 2M SDE'],
  ['dpmpp_2m_sde_heun', 'DPM++ 2M SDE Heun'],
  ['dpmpp_2m_sde_heun_gpu', 'DPM++ 2M SDE Heun'],
  ['dpmpp_3m_sde', 'DPM++ 3M SDE'],
  ['dpmpp_3m_sde_gpu', 'DPM++ 3M SDE'],
  ['ddim', 'DDIM'],
  ['uni_pc', 'UniPC'],
  ['lcm', 'LCM'],
]);

const SCHEDULERS = new Map([
  ['normal', 'Normal'],
  ['karras', 'Karras'],
  ['exponential', 'Exponential'],
  ['sgm_uniform', 'SGM Uniform'],
  ['simple', 'Simple'],
  ['ddim_uniform', 'DDIM'],
  ['beta', 'Beta'],
  ['kl_optimal', 'KL Optimal'],
]);

/** "dpmpp_2m" → "DPM++ 2M". */
export function a1111SamplerName(comfySampler: string): string {
  return SAMPLERS.get(comfySampler) ?? comfySampler;
}

/** "karras" → "Karras" (A1111's "Schedule type"). */
export function a1111ScheduleType(comfyScheduler: string): string {
  return SCHEDULERS.get(comfyScheduler) ?? comfyScheduler;
}
