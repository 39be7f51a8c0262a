/** One term of a linear combination: a coefficient and the tensor it scales. */
export type Term = readonly [coefficient: number, tensor: Float32Array];

/** Σ coefficient·tensor, elementwise. Every sampler update is one of these. */
export function combine(...terms: Term[]): Float32Array {
  const out = new Float32Array(terms[0][1].length);
  for (const [coefficient, tensor] of terms) {
    for (let k = 0; k < out.length; k++) out[k] += coefficient * tensor[k];
  }
  return out;
}

/** The Karras ODE derivative dx/dsigma = (x − denoised) / sigma. */
export function derivative(x: Float32Array, sigma: number, denoised: Float32Array): Float32Array {
  return combine([1 / sigma, x], [-1 / sigma, denoised]);
}
