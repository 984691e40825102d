// The on-demand synthetic source as a data path: `synth:<identities>x<images>[@<size>][,<option>=<value>...]`,
// accepted wherever a data folder is (train --data, data inspect, the benchmarks). The options are the
// ones `attfc synth` takes, spelled like its flags, so `synth:1000x8@32,seed=3` describes the images
// `attfc synth --identities 1000 --images-per-identity 8 --size 32 --seed 3` writes.
import { AttfcError } from '../../errors.js';
import { resolveSynthOptions, type ResolvedSynthOptions, type SynthOptions } from './options.js';

export const SYNTH_PREFIX = 'synth:';

/** How the spec is written, for --help and error messages. */
export const SYNTH_SPEC_SYNTAX = 'synth:<identities>x<images>[@<size>][,seed=<n>][,family-size=<n>][,low-quality-share=<p>][,jpeg-quality=<q>][,verify-identities=<n>][,verify-pairs=<n>]';

/** Spec option name -> SynthOptions key. */
const OPTION_KEYS = {
  seed: 'seed',
  'family-size': 'familySize',
  'low-quality-share': 'lowQualityShare',
  'jpeg-quality': 'jpegQuality',
  'verify-identities': 'verifyIdentities',
  'verify-pairs': 'verifyPairs',
} as const satisfies Record<string, keyof SynthOptions>;

/** True when `path` names the on-demand synthetic source rather than files. */
export function isSynthSpec(path: string): boolean {
  return path.startsWith(SYNTH_PREFIX);
}

/** The generator options a spec names (defaults filled in); an AttfcError naming the spec otherwise. */
export function parseSynthSpec(spec: string): ResolvedSynthOptions {
  const fail = (why: string): never => {
    throw new AttfcError(`${spec}: ${why}; expected ${SYNTH_SPEC_SYNTAX}, e.g. synth:100000x3@32`);
  };
  if (!isSynthSpec(spec)) fail(`does not start with "${SYNTH_PREFIX}"`);
  const [head, ...options] = spec.slice(SYNTH_PREFIX.length).split(',');
  const m = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(head ?? '');
  if (!m) fail(`"${head}" is not <identities>x<images>[@<size>] (whole numbers)`);
  const opts: SynthOptions = { identities: Number(m![1]), imagesPerIdentity: Number(m![2]), ...(m![3] !== undefined ? { size: Number(m![3]) } : {}) };
  const seen = new Set<string>();
  for (const option of options) {
    const [name, value, ...rest] = option.split('=');
    const key = OPTION_KEYS[name as keyof typeof OPTION_KEYS];
    if (key === undefined) fail(`unknown option "${name}" (known: ${Object.keys(OPTION_KEYS).join(', ')})`);
    if (value === undefined || value.trim() === '' || rest.length > 0 || !Number.isFinite(Number(value))) fail(`option ${name} needs a number, as ${name}=<number>`);
    if (seen.has(name)) fail(`option ${name} is given twice`);
    seen.add(name);
    (opts as unknown as Record<string, number>)[key] = Number(value);
  }
  try {
    return resolveSynthOptions(opts);
  } catch (e) {
    if (e instanceof AttfcError) throw new AttfcError(`${spec}: ${e.message.replace(/^synthetic options: /, '')}`);
    throw e;
  }
}

/** The canonical spec of resolved options (every option that differs from the defaults spelled out). */
export function formatSynthSpec(o: ResolvedSynthOptions): string {
  const defaults = resolveSynthOptions({ identities: o.identities, imagesPerIdentity: o.imagesPerIdentity });
  const parts = [`${SYNTH_PREFIX}${o.identities}x${o.imagesPerIdentity}@${o.size}`];
  for (const [name, key] of Object.entries(OPTION_KEYS)) if (o[key] !== defaults[key]) parts.push(`${name}=${o[key]}`);
  return parts.join(',');
}
