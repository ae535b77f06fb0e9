#!/usr/bin/env bash
# Packs kd-ts as it would be published, installs the tarball into a fresh
# project next to the tfjs sub-packages only (tfjs-core, tfjs-layers,
# tfjs-backend-cpu: no umbrella @tensorflow/tfjs, no tfjs-node), then runs one
# distillation step through the ESM entry and through the CJS entry, and
# imports a name from every subpath entry in both formats (a class shared by
# two entries must be one class: errors thrown behind kd-ts/io are kd-ts's).
#
# Usage: npm run build && bash scripts/pack-smoke.sh
# Env:
#   KD_PACK_SMOKE_KEEP=1   keep the temp dirs (their paths are printed)
#   KD_PACK_SMOKE_NPM_FLAGS  extra flags for `npm install` (default: --prefer-offline)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fixtures="$repo_root/scripts/pack-smoke"
tfjs_version="4.22.0"

log() { printf 'pack-smoke: %s\n' "$*" >&2; }

# Every file the exports map names (each entry: ESM and CJS code and types).
mapfiles="$(cd "$repo_root" && node -e '
  const pkg = require("./package.json");
  const leaves = (t) => (typeof t === "string" ? [t] : Object.values(t).flatMap(leaves));
  console.log([...new Set(leaves(pkg.exports))].filter((f) => f.startsWith("./dist/")).join("\n"));
')"
for f in $mapfiles; do
  if [[ ! -f "$repo_root/$f" ]]; then
    log "missing $f: run \`npm run build\` first"
    exit 1
  fi
done

pack_dir="$(mktemp -d "${TMPDIR:-/tmp}/kd-ts-pack.XXXXXX")"
project_dir="$(mktemp -d "${TMPDIR:-/tmp}/kd-ts-smoke.XXXXXX")"
cleanup() {
  if [[ "${KD_PACK_SMOKE_KEEP:-0}" != "0" ]]; then
    log "kept $pack_dir and $project_dir"
  else
    rm -rf "$pack_dir" "$project_dir"
  fi
}
trap cleanup EXIT

# 1. Pack (no lifecycle scripts: CI has just built dist/).
tarball_name="$(cd "$repo_root" && npm pack --ignore-scripts --silent --pack-destination "$pack_dir" | tail -n 1)"
tarball="$pack_dir/$tarball_name"
if [[ ! -f "$tarball" ]]; then
  log "npm pack did not produce a tarball (got: '$tarball_name')"
  exit 1
fi
log "packed $tarball_name ($(du -k "$tarball" | cut -f1) KiB)"

# The tarball must not ship sources, tests or maps of files it lacks.
if tar -tzf "$tarball" | grep -Eq '^package/(src|test|examples|node_modules)/'; then
  log "tarball ships files outside dist/:"
  tar -tzf "$tarball" | grep -E '^package/(src|test|examples|node_modules)/' >&2
  exit 1
fi

# 2. A fresh project: the tfjs sub-packages and the tarball, nothing else.
cat > "$project_dir/package.json" <<JSON
{
  "name": "kd-ts-pack-smoke",
  "version": "0.0.0",
  "private": true,
  "dependencies": {
    "@tensorflow/tfjs-backend-cpu": "$tfjs_version",
    "@tensorflow/tfjs-core": "$tfjs_version",
    "@tensorflow/tfjs-layers": "$tfjs_version",
    "kd-ts": "file:$tarball"
  }
}
JSON
cp "$fixtures/smoke.mjs" "$fixtures/smoke.cjs" "$project_dir/"

log "installing into $project_dir"
npm_flags="${KD_PACK_SMOKE_NPM_FLAGS-"--prefer-offline"}"
# shellcheck disable=SC2086 # word splitting of the extra flags is intended
(cd "$project_dir" && npm install --no-audit --no-fund --loglevel=error $npm_flags >&2)

if [[ -e "$project_dir/node_modules/@tensorflow/tfjs" || -e "$project_dir/node_modules/@tensorflow/tfjs-node" ]]; then
  log "the umbrella @tensorflow/tfjs or tfjs-node got installed: kd-ts must not depend on them"
  exit 1
fi

# 3. Run the ESM and CJS consumers from inside the project (its node_modules only).
cd "$project_dir"
node smoke.mjs
node smoke.cjs

# 4. ONNX and transformers.js teachers with neither installed: the optional peer stays optional,
#    and onnxTeacher / transformersTeacher load and run (kd-ts never imports onnxruntime).
for pkg in onnxruntime-web onnxruntime-node @huggingface/transformers; do
  if [[ -e "node_modules/$pkg" ]]; then
    log "$pkg got installed: it must stay optional (kd-ts types the session structurally)"
    exit 1
  fi
done
node --input-type=module -e '
  import * as tf from "@tensorflow/tfjs-core";
  import "@tensorflow/tfjs-backend-cpu";
  import { onnxTeacher } from "kd-ts";
  import { transformersTeacher } from "kd-ts/teachers";
  tf.env().set("PROD", true); // no "use tfjs-node" banner
  const session = { inputNames: ["x"], outputNames: ["logits"],
    run: async (feeds) => ({ logits: { type: "float32", dims: [feeds.x.dims[0], 3], data: new Float32Array(feeds.x.dims[0] * 3).fill(1) } }) };
  const x = tf.ones([2, 4]);
  const logits = await onnxTeacher(session).predict(x);
  if (logits.shape.join() !== "2,3") throw new Error(`onnxTeacher returned [${logits.shape}]`);
  if (typeof transformersTeacher !== "function") throw new Error("transformersTeacher is not exported");
  console.log("onnxTeacher without onnxruntime: ok");
'
node -e 'if (typeof require("kd-ts").onnxTeacher !== "function") throw new Error("CJS: onnxTeacher missing")'
