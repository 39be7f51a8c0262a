/**
 * LoRA: every family (LoRA, LoCon, LoHa, LoKr, DoRA, GLoRA, (IA)^3, OFT/BOFT, full, norm) and key format
 * (kohya, LyCORIS, PEFT/diffusers), matched to a checkpoint's canonical weights; strengths by component,
 * block group, block and step; prompt tags; trigger words; bake, combine and inspect. See README.md.
 */
export { LoraSet, type ActiveLora, type LoraSetOptions, type LoraTarget, type LowRankTerm } from './lora-set.ts';
export { bakeCheckpoint, type BakeResult } from './bake.ts';
export { combineLoras, type CombineMode, type CombineOptions, type CombineResult } from './combine.ts';
export { inspectLora, formatLoraInspection, type LoraInspection } from './inspect.ts';
export {
  parseLoraSpec,
  resolveStrengths,
  strengthAt,
  checkBlocks,
  formatLoraSpec,
  STRENGTH_OPTIONS,
  type LoraSpec,
  type ResolvedStrengths,
  type StrengthTarget,
} from './spec.ts';
export { parseStrength, strengthAtStep, formatStrength, type Strength, type SchedulePoint } from './schedule.ts';
export { extractLoraTags, type PromptLoras } from './tags.ts';
export { listLoras, resolveLoraName, loraPath, closestNames } from './resolve.ts';
export { triggerWords, appendTriggerWords, type TriggerWords } from './triggers.ts';
export { LoraFile, LoraFileCache, sharedLoraCache, fileStamp, type LoraModule, type UnusedKey } from './file.ts';
export { parseLoraKey, summariseNames, type LoraComponent, type KeyStyle, type ParsedKey } from './keys.ts';
export { detectModuleKind, familyLabel, isAdditive, type LoraFamily, type ModuleKind } from './families.ts';
export { detectLoraBase, checkLoraBase, familyName, type LoraBase } from './base-model.ts';
export { ModelTargets, unetBlockNames, unetPlace, type BlockGroup, type TargetPlace } from './targets.ts';
export { loraDebugFromEnv, type LoraLogger, type LoraLogOptions } from './log.ts';
export type { LowRank } from './math/index.ts';
export { writeKohyaLora } from './generate.ts';
