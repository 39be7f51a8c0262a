/**
 * Structural descriptions of the three Stable Diffusion modules, inferred from a checkpoint's tensor shapes
 * (see detect.ts). Graph builders, key maps and LoRA block grouping all read these; nothing here names a
 * concrete size.
 */

export type ModelFamily = 'sd1' | 'sd2' | 'sdxl';

export type Prediction = 'eps' | 'v';

/** The denoising UNet, described as the original (LDM/SGM) `UNetModel` is parameterised. */
export interface UNetConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  /** Width of level 0; level i has modelChannels × channelMult[i]. */
  readonly modelChannels: number;
  readonly channelMult: readonly number[];
  /** ResBlocks per down level (up levels have one more). */
  readonly numResBlocks: number;
  /** Transformer blocks per SpatialTransformer at each level; 0 means the level has no attention. */
  readonly transformerDepth: readonly number[];
  readonly transformerDepthMiddle: number;
  /** Attention heads at each level (and in the middle block). */
  readonly heads: readonly number[];
  readonly headsMiddle: number;
  /** Width of the cross-attention context (the text encoder output). */
  readonly contextDim: number;
  /** proj_in / proj_out are Linear (SD2, SDXL) rather than 1x1 Conv (SD1). */
  readonly linearProjection: boolean;
  /** Input width of the SDXL `label_emb` (pooled text + Fourier-embedded time ids); 0 when absent. */
  readonly admInChannels: number;
  /** Number of SDXL size/crop conditioning ids (6 for SDXL base); 0 when absent. */
  readonly timeIdCount: number;
  /** Width of each Fourier-embedded time id (256 for SDXL base). */
  readonly timeIdDim: number;
}

/** The KL autoencoder (first_stage_model). */
export interface VaeConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly latentChannels: number;
  readonly baseChannels: number;
  readonly channelMult: readonly number[];
  readonly numResBlocks: number;
  /** Latent scaling factor: 0.18215 for SD1/SD2, 0.13025 for SDXL. */
  readonly scalingFactor: number;
}

/** A CLIP-style text transformer (OpenCLIP towers are mapped onto the same transformers names). */
export interface ClipConfig {
  readonly vocabSize: number;
  readonly width: number;
  readonly layers: number;
  readonly heads: number;
  readonly intermediate: number;
  readonly maxPositions: number;
  readonly activation: 'quick_gelu' | 'gelu';
  /** Width of the pooled projection (`text_projection`), 0 when the encoder has none. */
  readonly projectionDim: number;
}

export interface CheckpointConfig {
  readonly family: ModelFamily;
  /** Known only where the file says so (SD2 768-v models); undefined means "assume eps". */
  readonly prediction: Prediction | undefined;
  readonly unet?: UNetConfig;
  readonly vae?: VaeConfig;
  /** SD1/SD2: one encoder. SDXL: [CLIP-L, OpenCLIP-G]. */
  readonly clip: readonly ClipConfig[];
}
