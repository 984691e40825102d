#!/usr/bin/env node
// Builds the optional libtorch addon (native/build/attfc_torch.node) with g++, without node-gyp and
// without downloading anything: Node-API headers come with Node itself, libtorch from LIBTORCH=<dir>
// (an unpacked libtorch archive from pytorch.org, CPU or CUDA) or else Debian's libtorch-dev.
// Usage: npm run build:native            (exit 1 with one line when something is missing)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// every native/*.cc is one translation unit of the addon (binding.h is their shared plumbing)
const sources = readdirSync(here).filter((f) => f.endsWith('.cc')).sort().map((f) => path.join(here, f));
const outDir = path.join(here, 'build');
const output = path.join(outDir, 'attfc_torch.node');
const INSTALL_HINT =
  'install it with `apt-get install -y libtorch-dev libgloo-dev libopenblas0-pthread g++` (Debian/Ubuntu), ' +
  'or unpack a libtorch archive from pytorch.org and set LIBTORCH=<its folder>';

function fail(message) {
  process.stderr.write(`attfc build:native: ${message}\n`);
  process.exit(1);
}

/** Node-API headers: next to the running node (official tarballs) or the distribution's include dir. */
function nodeIncludeDir() {
  const candidates = [
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  const found = candidates.find((d) => existsSync(path.join(d, 'node_api.h')));
  if (!found)
    fail(`Node-API headers (node_api.h) not found in ${candidates.join(', ')}: install Node.js with its headers (Debian: nodejs, or the official tarball)`);
  return found;
}

/** Compiler and linker flags for LIBTORCH=<dir> (a pytorch.org archive). */
function archiveLibtorch(dir) {
  const include = path.join(dir, 'include');
  const lib = path.join(dir, 'lib');
  if (!existsSync(path.join(include, 'ATen', 'ATen.h')) || !existsSync(path.join(lib, 'libtorch_cpu.so')))
    fail(`LIBTORCH=${dir} does not look like an unpacked libtorch archive (expected include/ATen/ATen.h and lib/libtorch_cpu.so)`);
  const cmake = path.join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  const abi0 = existsSync(cmake) && readFileSync(cmake, 'utf8').includes('_GLIBCXX_USE_CXX11_ABI=0');
  const cuda = existsSync(path.join(lib, 'libtorch_cuda.so'));
  const versionFile = path.join(dir, 'build-version');
  return {
    where: `LIBTORCH=${dir}`,
    version: existsSync(versionFile) ? readFileSync(versionFile, 'utf8').trim() : null,
    cflags: [`-I${include}`, ...(abi0 ? ['-D_GLIBCXX_USE_CXX11_ABI=0'] : [])],
    // --no-as-needed: the CUDA libraries register their kernels and hooks at load time, nothing links to them
    libs: [`-L${lib}`, `-Wl,-rpath,${lib}`, '-Wl,--no-as-needed', ...(cuda ? ['-ltorch_cuda', '-lc10_cuda'] : []), '-ltorch', '-ltorch_cpu', '-lc10', '-Wl,--as-needed'],
    cuda,
  };
}

/** Compiler and linker flags for Debian's libtorch-dev. */
function debianLibtorch() {
  if (!existsSync('/usr/include/ATen/ATen.h')) fail(`libtorch not found (no LIBTORCH set and no /usr/include/ATen/ATen.h): ${INSTALL_HINT}`);
  let version = null;
  try {
    version = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libtorch-dev'], { encoding: 'utf8' }).split('+')[0].trim() || null;
  } catch {
    /* not a dpkg system: the headers' version is used */
  }
  return { where: 'Debian libtorch-dev', version, cflags: [], libs: ['-ltorch', '-ltorch_cpu', '-lc10'], cuda: false };
}

/**
 * c10d's Gloo process group (native/process_group.cc) needs Gloo's headers: Debian ships them apart from
 * libtorch-dev (libgloo-dev); a libtorch archive may carry its own. NCCL comes with a CUDA libtorch.
 */
function distributedFlags(torch) {
  const archiveInclude = process.env.LIBTORCH ? path.join(path.resolve(process.env.LIBTORCH), 'include') : null;
  const gloo = [archiveInclude, '/usr/include', '/usr/local/include'].find((d) => d && existsSync(path.join(d, 'gloo', 'algorithm.h')));
  if (!gloo) fail('Gloo headers (gloo/algorithm.h) not found: install them with `apt-get install -y libgloo-dev` (Debian/Ubuntu); the distributed training process group needs them');
  const c10dInclude = archiveInclude ?? '/usr/include';
  const nccl = torch.cuda && existsSync(path.join(c10dInclude, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupNCCL.hpp'));
  return { cflags: ['-DUSE_C10D_GLOO', ...(gloo.startsWith('/usr/') ? [] : [`-I${gloo}`]), ...(nccl ? ['-DUSE_C10D_NCCL'] : [])], nccl };
}

const torch = process.env.LIBTORCH ? archiveLibtorch(path.resolve(process.env.LIBTORCH)) : debianLibtorch();
const distributed = distributedFlags(torch);
const cxx = process.env.CXX || 'g++';
if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) fail(`C++ compiler '${cxx}' not found: ${INSTALL_HINT}`);

mkdirSync(outDir, { recursive: true });
const tmp = `${output}.tmp-${process.pid}`;
const objDir = path.join(outDir, `obj-${process.pid}`);
mkdirSync(objDir, { recursive: true });
const compileFlags = [
  '-O3',
  '-std=c++17',
  '-fPIC',
  '-Wall',
  '-Wno-unused-parameter',
  `-I${nodeIncludeDir()}`,
  ...torch.cflags,
  ...distributed.cflags,
  ...(torch.version ? [`-DATTFC_LIBTORCH_VERSION=${torch.version}`] : []),
];

/** Runs the compiler; resolves with its exit status. */
function run(argv) {
  return new Promise((resolve) => spawn(cxx, argv, { stdio: 'inherit' }).on('close', (code, signal) => resolve(code ?? signal)));
}

process.stderr.write(`attfc build:native: compiling ${sources.length} source${sources.length === 1 ? "" : "s"} against ${torch.where}${torch.version ? ` (libtorch ${torch.version})` : ''}${torch.cuda ? `, with CUDA${distributed.nccl ? ' and NCCL' : ''}` : ''}...\n`);
const t0 = Date.now();
try {
  // the translation units compile in parallel (libtorch's headers make each one take seconds)
  const objects = [];
  const queue = [...sources];
  const parallel = Math.max(1, Math.min(os.availableParallelism(), queue.length));
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let src = queue.shift(); src; src = queue.shift()) {
        const obj = path.join(objDir, path.basename(src, '.cc') + '.o');
        const argv = [...compileFlags, '-c', src, '-o', obj];
        const status = await run(argv);
        if (status !== 0) fail(`${cxx} failed on ${path.basename(src)} (exit ${status}); the command was: ${cxx} ${argv.join(' ')}`);
        objects.push(obj);
      }
    }),
  );
  const linkArgv = ['-shared', '-fPIC', ...objects.sort(), '-o', tmp, ...torch.libs];
  const r = spawnSync(cxx, linkArgv, { stdio: 'inherit' });
  if (r.status !== 0) fail(`${cxx} failed to link (exit ${r.status ?? r.signal}); the command was: ${cxx} ${linkArgv.join(' ')}`);
  renameSync(tmp, output);
} finally {
  rmSync(objDir, { recursive: true, force: true });
}
process.stderr.write(`attfc build:native: wrote ${path.relative(process.cwd(), output)} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
