/**
 * Converting constant (widget) values to what a node's `execute` receives, as ComfyUI's validation does
 * (int(), float(), str(), bool()); also the range and list checks. Shared by validation and execution.
 */
import { parseSeed } from '../engine/noise/index.ts';
import type { NodeEnv } from './env.ts';
import type { ComboInput, InputSpec } from './types.ts';

export type Coerced = { ok: true; value: unknown } | { ok: false; type: string; message: string; details?: string };

export function comboOptions(spec: ComboInput, env: NodeEnv): readonly string[] {
  return typeof spec.options === 'function' ? spec.options(env) : spec.options;
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
  return undefined;
}

export function coerceInput(name: string, spec: InputSpec, value: unknown, env: NodeEnv): Coerced {
  const bad = (type: string, message: string, details?: string): Coerced => ({ ok: false, type, message, details });
  switch (spec.kind) {
    case 'INT': {
      if (spec.seed) {
        try {
          const seed = parseSeed(typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' ? value : String(value));
          if (seed < BigInt(spec.min)) return bad('value_smaller_than_min', `Value ${seed} smaller than min of ${spec.min}`, `${name}`);
          if (seed > BigInt(spec.max)) return bad('value_bigger_than_max', `Value ${seed} bigger than max of ${spec.max}`, `${name}`);
          return { ok: true, value: seed };
        } catch (err) {
          return bad('invalid_input_type', `Failed to convert an input value to a INT value: ${name}, ${String(value)}`, (err as Error).message);
        }
      }
      const n = toNumber(value);
      if (n === undefined || !Number.isFinite(n)) return bad('invalid_input_type', `Failed to convert an input value to a INT value: ${name}, ${String(value)}`);
      const v = Math.trunc(n);
      if (v < Number(spec.min)) return bad('value_smaller_than_min', `Value ${v} smaller than min of ${spec.min}`, name);
      if (v > Number(spec.max)) return bad('value_bigger_than_max', `Value ${v} bigger than max of ${spec.max}`, name);
      return { ok: true, value: v };
    }
    case 'FLOAT': {
      const n = toNumber(value);
      if (n === undefined || Number.isNaN(n)) return bad('invalid_input_type', `Failed to convert an input value to a FLOAT value: ${name}, ${String(value)}`);
      if (n < spec.min) return bad('value_smaller_than_min', `Value ${n} smaller than min of ${spec.min}`, name);
      if (n > spec.max) return bad('value_bigger_than_max', `Value ${n} bigger than max of ${spec.max}`, name);
      return { ok: true, value: n };
    }
    case 'STRING':
      if (value === null || typeof value === 'object') return bad('invalid_input_type', `Failed to convert an input value to a STRING value: ${name}`);
      return { ok: true, value: String(value) };
    case 'BOOLEAN':
      if (typeof value === 'boolean') return { ok: true, value };
      if (value === 'true' || value === 1) return { ok: true, value: true };
      if (value === 'false' || value === 0) return { ok: true, value: false };
      return bad('invalid_input_type', `Failed to convert an input value to a BOOLEAN value: ${name}, ${String(value)}`);
    case 'COMBO': {
      const options = comboOptions(spec, env);
      const text = String(value);
      if (options.includes(text) || spec.allowUnlisted) return { ok: true, value: text };
      const list = options.length > 20 ? `(list of length ${options.length})` : JSON.stringify(options);
      return bad('value_not_in_list', `Value not in list: ${name}: '${text}' not in ${list}`, `${name}: '${text}' not in ${list}`);
    }
    case 'SOCKET':
      return bad('invalid_input_type', `${name} must be connected to a ${spec.type} output, not given a constant`);
  }
}
