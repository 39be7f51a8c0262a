/**
 * Finds a LoRA by the name a user wrote, inside the loras folder only: a path relative to the folder (with
 * or without `.safetensors`, any case, `/` or `\`), or a bare file name found in any subfolder. Names that
 * would leave the folder are refused; an unknown name lists the closest names there.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FileFormatError, InvalidInputError, LoraNotFoundError } from '../errors.ts';

const PICKLES = ['.ckpt', '.pt', '.pth', '.bin'];

/** Every .safetensors file under `dir`, as relative paths with `/` separators, sorted. */
export function listLoras(dir: string): string[] {
  const out: string[] = [];
  const walk = (sub: string) => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.toLowerCase().endsWith('.safetensors')) out.push(rel);
    }
  };
  walk('');
  return out.sort();
}

const withoutExtension = (p: string) => p.replace(/\.safetensors$/i, '');
const baseName = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** The absolute path of the LoRA `name` inside `lorasDir`. */
export function resolveLoraName(name: string, lorasDir: string): string {
  if (!existsSync(lorasDir)) throw new LoraNotFoundError(name, `${lorasDir} (the loras folder does not exist yet)`, []);
  const root = realpathSync(lorasDir);
  const wanted = name.trim().replaceAll('\\', '/');
  if (isAbsolute(wanted) || /^[a-z]:\//i.test(wanted)) {
    const abs = resolve(wanted);
    const rel = relative(root, existsSync(abs) ? realpathSync(abs) : abs);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new InvalidInputError(`LoRA "${name}" is outside the loras folder ${root}; only LoRAs inside it are loaded`);
    return resolveLoraName(rel, root);
  }
  if (wanted.split('/').includes('..')) throw new InvalidInputError(`LoRA name "${name}" contains "..": names are paths inside the loras folder ${root}`);
  const files = listLoras(root);
  const key = withoutExtension(wanted).toLowerCase();
  const byPath = files.filter((f) => withoutExtension(f).toLowerCase() === key);
  const matches = byPath.length ? byPath : files.filter((f) => withoutExtension(baseName(f)).toLowerCase() === key);
  if (matches.length > 1) {
    throw new InvalidInputError(`LoRA name "${name}" is ambiguous in ${root}: ${matches.join(', ')}; write the path inside the folder`);
  }
  if (matches.length === 1) return insideRoot(root, matches[0], name);
  const pickle = PICKLES.map((ext) => join(root, wanted + ext)).find((p) => existsSync(p) && statSync(p).isFile());
  if (pickle || PICKLES.includes(extname(wanted).toLowerCase())) {
    throw new FileFormatError(pickle ?? wanted, 'is a PyTorch pickle; only .safetensors LoRAs are loaded (pickles can run code when loaded)', 'pickle_refused');
  }
  throw new LoraNotFoundError(name, root, closestNames(wanted, files));
}

/** A listed file's real path, refused if a symbolic link leads out of the folder. */
function insideRoot(root: string, rel: string, name: string): string {
  const real = realpathSync(join(root, rel));
  if (real !== root && !real.startsWith(root + sep)) throw new InvalidInputError(`LoRA "${name}" links outside the loras folder ${root}`);
  return real;
}

/** Up to `count` names closest to `name`: substring matches first, then by edit distance of the file name. */
export function closestNames(name: string, candidates: readonly string[], count = 5): string[] {
  const target = withoutExtension(baseName(name)).toLowerCase();
  const scored = candidates.map((c) => {
    const base = withoutExtension(baseName(c)).toLowerCase();
    const contains = base.includes(target) || target.includes(base);
    return { c: withoutExtension(c), score: (contains ? 0 : 1000) + editDistance(target, base) };
  });
  return scored.sort((a, b) => a.score - b.score || a.c.localeCompare(b.c)).slice(0, count).map((s) => s.c);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length];
}

/**
 * The file a spec names: inside `lorasDir` when given (prompt tags, nodes), else a path to a .safetensors file
 * (command line), with or without its extension.
 */
export function loraPath(name: string, lorasDir?: string): string {
  if (lorasDir) return resolveLoraName(name, lorasDir);
  for (const candidate of [name, `${name}.safetensors`]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) {
      if (PICKLES.includes(extname(candidate).toLowerCase())) {
        throw new FileFormatError(candidate, 'is a PyTorch pickle; only .safetensors LoRAs are loaded (pickles can run code when loaded)', 'pickle_refused');
      }
      return candidate;
    }
  }
  const dir = dirname(name);
  const nearby = existsSync(dir) && statSync(dir).isDirectory() ? listLoras(dir) : [];
  throw new LoraNotFoundError(name, existsSync(dir) ? dir : 'any folder (the file does not exist)', closestNames(name, nearby));
}
