#!/usr/bin/env node
// The JavaScript-reachable peers, timed the way bench_tokenizer times llmkit: the corpus cut into
// ~64 kB texts, encoded one after the other (one thread), or as one batch (HF: all threads).
//   node peers.js encode CORPUS GPT2_DIR    -> tiktoken r50k_base and HF tokenizers (GPT-2 vocab)
//   node peers.js train CORPUS OUT.json     -> HF BpeTrainer (its default: vocab 30000, min 0)
// Prints one JSON line per measurement. Needs: npm install tiktoken tokenizers (bench/tokenizer/run.sh).
'use strict';
const fs = require('fs');

function chunks(text) {
  const out = [];
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', Math.min(text.length, pos + 65536));
    end = end < 0 ? text.length : end + 1;
    out.push(text.slice(pos, end));
    pos = end;
  }
  return out;
}

async function timeIt(fn, minSeconds = 2) {
  await fn();  // warm-up
  let runs = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  let result;
  while (elapsed < minSeconds || runs < 2) {
    result = await fn();
    runs++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  return { seconds: elapsed / runs, result };
}

async function encode(corpus, gpt2Dir) {
  const text = fs.readFileSync(corpus, 'utf8');
  const bytes = Buffer.byteLength(text);
  const parts = chunks(text);
  const report = (name, r) =>
    console.log(JSON.stringify({ name, mb_per_s: bytes / r.seconds / 1e6, tokens: r.result }));
  const { get_encoding } = require('tiktoken');
  const enc = get_encoding('r50k_base');
  report('tiktoken (npm, wasm) 1 thread', await timeIt(() => {
    let n = 0;
    for (const p of parts) n += enc.encode_ordinary(p).length;
    return n;
  }));
  const { Tokenizer, BPE, byteLevelPreTokenizer } = require('tokenizers');
  const model = await BPE.fromFile(`${gpt2Dir}/encoder.json`, `${gpt2Dir}/vocab.bpe`);
  const tok = new Tokenizer(model);
  tok.setPreTokenizer(byteLevelPreTokenizer(false, true));
  report('HF tokenizers (npm, native) 1 thread', await timeIt(async () => {
    let n = 0;
    for (const p of parts) n += (await tok.encode(p)).getLength();
    return n;
  }));
  report('HF tokenizers (npm, native) batch, all threads', await timeIt(async () => {
    let n = 0;
    for (const e of await tok.encodeBatch(parts)) n += e.getLength();
    return n;
  }));
}

function train(corpus, out) {
  const { Tokenizer, BPE, byteLevelPreTokenizer } = require('tokenizers');
  const tok = new Tokenizer(BPE.empty());
  tok.setPreTokenizer(byteLevelPreTokenizer(false, true));
  const t0 = process.hrtime.bigint();
  tok.train([corpus]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  tok.save(out);
  console.log(JSON.stringify({ name: 'HF tokenizers train', seconds, vocab: tok.getVocabSize() }));
}

const [mode, corpus, arg] = process.argv.slice(2);
if (mode === 'encode') encode(corpus, arg);
else if (mode === 'train') train(corpus, arg);
else console.error('usage: peers.js encode CORPUS GPT2_DIR | train CORPUS OUT.json');
