/** A float tensor as the engine passes them around: row-major data with its shape (NCHW for images/latents). */
export interface FloatTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
