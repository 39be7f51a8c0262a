/**
 * Typed errors for everything a user can cause: a bad file, a bad workflow, a missing tokenizer, a LoRA
 * that does not fit the model. Each carries a stable `code` (for APIs and tests) and a message that names the
 * thing and the fix. Programming errors stay plain `Error`s.
 */
export class LoraGraphError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A file that is not what it claims to be: corrupt or hostile safetensors, a pickle, an unknown layout. */
export class FileFormatError extends LoraGraphError {
  readonly file: string;

  constructor(file: string, problem: string, code = 'bad_file') {
    super(code, `${file}: ${problem}`);
    this.file = file;
  }
}

/** A checkpoint whose tensors do not form a model we can run. */
export class ModelLayoutError extends LoraGraphError {
  constructor(message: string) {
    super('unknown_model_layout', message);
  }
}

/** The caller asked for something that is not there (a model, LoRA, tokenizer, input image...). */
export class NotFoundError extends LoraGraphError {
  constructor(message: string) {
    super('not_found', message);
  }
}

/** A value given by the user (a node input, a CLI flag, a tag) is out of range or malformed. */
export class InvalidInputError extends LoraGraphError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

/** A run was stopped by an interrupt request. */
export class InterruptedError extends LoraGraphError {
  constructor() {
    super('interrupted', 'Interrupted by request');
  }
}

/** A LoRA spec (the text of a `<lora:…>` tag or a `--lora` flag) with a bad part; `part` names it. */
export class LoraSpecError extends LoraGraphError {
  readonly spec: string;
  readonly part: string;

  constructor(spec: string, part: string, problem: string) {
    super('bad_lora_spec', `LoRA spec "${spec}": ${part ? `"${part}" ` : ''}${problem}`);
    this.spec = spec;
    this.part = part;
  }
}

/** A LoRA name that is not in the loras folder; `closest` holds the nearest names there. */
export class LoraNotFoundError extends NotFoundError {
  readonly lora: string;
  readonly closest: readonly string[];

  constructor(lora: string, where: string, closest: readonly string[]) {
    super(
      `LoRA "${lora}" is not in ${where}` +
        (closest.length ? `; closest names: ${closest.join(', ')}` : '; the folder has no .safetensors LoRAs'),
    );
    this.lora = lora;
    this.closest = closest;
  }
}

/** A LoRA that does not fit the model: it matches none of its weights, or a tensor has the wrong size. */
export class LoraMismatchError extends LoraGraphError {
  readonly lora: string;

  constructor(lora: string, message: string, code = 'lora_mismatch') {
    super(code, `${lora}: ${message}`);
    this.lora = lora;
  }
}

/** A LoRA trained for another base model family (an SD1.x LoRA on SDXL, …), found before any shape is compared. */
export class LoraBaseModelError extends LoraMismatchError {
  readonly loraFamily: string;
  readonly modelFamily: string;

  constructor(lora: string, loraFamily: string, modelFamily: string, decidedBy: string) {
    super(
      lora,
      `is a ${loraFamily} LoRA (${decidedBy}) but the model is ${modelFamily}; pick a LoRA made for ${modelFamily} ` +
        `or load a ${loraFamily} checkpoint`,
      'lora_base_mismatch',
    );
    this.loraFamily = loraFamily;
    this.modelFamily = modelFamily;
  }
}
