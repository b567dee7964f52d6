// Runs an ONNX model written by `vitq export` in ONNX Runtime (onnxruntime-node, CPU execution
// provider), for tests/onnx_ort_test.sh and bench/onnx_roundtrip.sh.
//
//   node onnx_ort.js predict MODEL.onnx INPUTS.f32 N SIZE OUT.json   top-1 class and logits of
//        each of the N preprocessed images ([N, 3, SIZE, SIZE] float32, from dump_inputs)
//   node onnx_ort.js time MODEL.onnx BATCH SIZE                      one JSON line: images/s
// Environment: VITQ_ORT_NODE_MODULES (folder holding onnxruntime-node; required), VITQ_ORT_THREADS
// (2), VITQ_ORT_MIN_SECONDS (4). Session options as ../shared/peers/bench_ort.js sets them: intra-op
// threads, inter-op 1, sequential, all graph optimizations.
'use strict';
const fs = require('fs');
const path = require('path');

const fail = (msg) => { process.stderr.write(`onnx_ort: ${msg}\n`); process.exit(1); };
const now = () => Number(process.hrtime.bigint()) / 1e9;

async function session(ort, model, threads) {
  return ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', executionProviders: ['cpu'], logSeverityLevel: 3,
  });
}

async function main() {
  const [mode, model, ...rest] = process.argv.slice(2);
  const modules = process.env.VITQ_ORT_NODE_MODULES;
  if (!modules) fail('VITQ_ORT_NODE_MODULES is not set');
  let ort;
  try {
    ort = require(path.join(modules, 'onnxruntime-node'));
  } catch (e) {
    fail(`cannot load onnxruntime-node from ${modules}: ${e.message}`);
  }
  const threads = Number(process.env.VITQ_ORT_THREADS || 2);
  const sess = await session(ort, model, threads);
  const inName = sess.inputNames[0], outName = sess.outputNames[0];
  if (mode === 'predict') {
    const [inputs, nS, sizeS, out] = rest;
    const size = parseInt(sizeS, 10), per = 3 * size * size;
    const n = parseInt(nS, 10);
    const buf = fs.readFileSync(inputs);
    if (buf.length !== n * per * 4) fail(`${inputs}: ${buf.length} bytes, expected ${n * per * 4}`);
    const all = new Float32Array(buf.buffer, buf.byteOffset, n * per);
    const results = [];
    for (let i = 0; i < n; i++) {
      const x = new Float32Array(all.subarray(i * per, (i + 1) * per));
      const y = (await sess.run({ [inName]: new ort.Tensor('float32', x, [1, 3, size, size]) }))[outName].data;
      let best = 0;
      for (let j = 1; j < y.length; j++) if (y[j] > y[best]) best = j;
      if (!Number.isFinite(y[best])) fail(`image ${i}: non-finite logits`);
      results.push({ top1: best, logits: Array.from(y, (v) => Math.round(v * 1e4) / 1e4) });
    }
    fs.writeFileSync(out, JSON.stringify(results));
    return;
  }
  if (mode === 'time') {
    const batch = parseInt(rest[0], 10), size = parseInt(rest[1], 10), per = 3 * size * size;
    const minSeconds = Number(process.env.VITQ_ORT_MIN_SECONDS || 4);
    const data = new Float32Array(batch * per);
    for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
    const feeds = { [inName]: new ort.Tensor('float32', data, [batch, 3, size, size]) };
    let t0 = now();
    while (now() - t0 < 1) await sess.run(feeds);
    let reps = 0;
    t0 = now();
    while (reps < 3 || now() - t0 < minSeconds) { await sess.run(feeds); reps++; }
    const secs = now() - t0;
    process.stdout.write(JSON.stringify({ model: path.basename(model), batch, threads,
      images_per_second: Math.round(batch * reps / secs * 10) / 10, reps }) + '\n');
    return;
  }
  fail('usage: node onnx_ort.js predict MODEL INPUTS N SIZE OUT | time MODEL BATCH SIZE');
}
main().catch((e) => fail(e.message));
