/**
 * LocalEmbeddings: latent semantic analysis fitted on the tenant's own corpus, so the engine has a
 * vector side with no model download and no network. Features are stemmed terms plus adjacent-term
 * bigrams, weighted TF-IDF (sublinear tf), reduced by a truncated SVD computed with randomized power
 * iteration (Halko, Martinsson & Tropp 2011) in plain TypeScript, then L2-normalised. Deterministic: the
 * random test matrix comes from a seeded generator and features are sorted.
 *
 * The fitted model serialises (toJSON/fromJSON: vocabulary, idf, the projection as int8 with per-feature
 * scales) so the store keeps it beside the index and a restart reuses it.
 */
import { createHash } from 'node:crypto';
import { Embeddings } from '@langchain/core/embeddings';
import { docTerms } from './text.js';

export interface LocalEmbeddingsJSON {
  kind: 'local-lsa';
  version: 1;
  dims: number;
  features: string[];
  idf: number[];
  /** int8 projection, features × dims, base64. */
  projection: string;
  /** Per-feature scale of the int8 projection. */
  scales: number[];
}

export interface FitOptions {
  dims?: number;
  maxFeatures?: number;
  powerIterations?: number;
  seed?: number;
}

/** Terms and bigrams of a text: the embedder's feature tokens. */
export function featureTokens(text: string): string[] {
  const terms = docTerms(text);
  const out = terms.slice();
  for (let i = 1; i < terms.length; i++) out.push(`${terms[i - 1]}_${terms[i]}`);
  return out;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Sparse {
  /** Row pointers (rows + 1). */
  ptr: Int32Array;
  col: Int32Array;
  val: Float64Array;
  rows: number;
  cols: number;
}

/** Orthonormalises the columns of a rows×l row-major matrix in place (modified Gram-Schmidt on a column-major copy). */
function orthonormalise(m: Float64Array, rows: number, l: number): void {
  const cols: Float64Array[] = [];
  for (let j = 0; j < l; j++) {
    const c = new Float64Array(rows);
    for (let i = 0; i < rows; i++) c[i] = m[i * l + j]!;
    cols.push(c);
  }
  for (let j = 0; j < l; j++) {
    const cj = cols[j]!;
    for (let p = 0; p < j; p++) {
      const cp = cols[p]!;
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += cj[i]! * cp[i]!;
      for (let i = 0; i < rows; i++) cj[i]! -= dot * cp[i]!;
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += cj[i]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < rows; i++) cj[i]! /= norm;
  }
  for (let j = 0; j < l; j++) {
    const c = cols[j]!;
    for (let i = 0; i < rows; i++) m[i * l + j] = c[i]!;
  }
}

/** A (rows×cols sparse) · M (cols×l) → rows×l. */
function mulA(a: Sparse, m: Float64Array, l: number): Float64Array {
  const out = new Float64Array(a.rows * l);
  for (let i = 0; i < a.rows; i++) {
    const o = i * l;
    for (let p = a.ptr[i]!; p < a.ptr[i + 1]!; p++) {
      const v = a.val[p]!;
      const r = a.col[p]! * l;
      for (let j = 0; j < l; j++) out[o + j]! += v * m[r + j]!;
    }
  }
  return out;
}

/** Aᵀ (cols×rows) · Y (rows×l) → cols×l. */
function mulAt(a: Sparse, y: Float64Array, l: number): Float64Array {
  const out = new Float64Array(a.cols * l);
  for (let i = 0; i < a.rows; i++) {
    const o = i * l;
    for (let p = a.ptr[i]!; p < a.ptr[i + 1]!; p++) {
      const v = a.val[p]!;
      const r = a.col[p]! * l;
      for (let j = 0; j < l; j++) out[r + j]! += v * y[o + j]!;
    }
  }
  return out;
}

/** Eigen-decomposition of a symmetric n×n matrix by cyclic Jacobi; returns values and column vectors. */
function jacobiEigen(s: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(s);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - sn * akq;
          a[k * n + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - sn * aqk;
          a[q * n + k] = sn * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i]!;
  return { values, vectors: v };
}

export class LocalEmbeddings extends Embeddings {
  readonly dims: number;
  /** A stable name: kind, dimensions and a hash of the model. */
  readonly name: string;
  private readonly features: string[];
  private readonly index: Map<string, number>;
  private readonly idf: Float64Array;
  /**
   * features × dims, row-major, as stored: int8 with a scale per feature. Kept so (2 MB over the
   * bundled corpus) rather than expanded to float32 (8 MB): `embedOne` rounds each product to float32
   * as the expanded array held it, so the vectors are the same.
   */
  private readonly q8: Int8Array;
  private readonly scales: Float64Array;

  private constructor(json: LocalEmbeddingsJSON) {
    super({});
    this.dims = json.dims;
    this.features = json.features;
    this.index = new Map(json.features.map((f, i) => [f, i]));
    this.idf = Float64Array.from(json.idf);
    const bytes = Buffer.from(json.projection, 'base64');
    this.q8 = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    if (this.q8.length !== json.features.length * json.dims) throw new Error(`The local-lsa projection holds ${this.q8.length} values, expected ${json.features.length * json.dims}`);
    this.scales = Float64Array.from(json.scales);
    const h = createHash('sha256').update(json.projection).update(json.features.join('\n')).digest('hex').slice(0, 12);
    this.name = `local-lsa-${this.dims}-${h}`;
  }

  static fromJSON(json: LocalEmbeddingsJSON): LocalEmbeddings {
    if (json.kind !== 'local-lsa' || json.version !== 1) throw new Error('Not a local-lsa v1 embedder model');
    return new LocalEmbeddings(json);
  }

  toJSON(): LocalEmbeddingsJSON {
    return {
      kind: 'local-lsa',
      version: 1,
      dims: this.dims,
      features: this.features,
      idf: Array.from(this.idf),
      projection: Buffer.from(this.q8.buffer, this.q8.byteOffset, this.q8.byteLength).toString('base64'),
      scales: Array.from(this.scales),
    };
  }

  /** Fits the model on the given texts (one per document). */
  static fit(texts: string[], opts: FitOptions = {}): LocalEmbeddings {
    const maxFeatures = opts.maxFeatures ?? 16_000;
    const docs = texts.map(featureTokens);
    const df = new Map<string, number>();
    for (const toks of docs) for (const t of new Set(toks)) df.set(t, (df.get(t) ?? 0) + 1);
    const n = docs.length;
    const minDf = n >= 50 ? 2 : 1;
    const features = [...df]
      .filter(([t, c]) => c >= minDf && (c <= 0.5 * n || n < 20) && (!t.includes('_') || c >= Math.min(3, minDf + 1)))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, maxFeatures)
      .map(([t]) => t)
      .sort();
    const index = new Map(features.map((f, i) => [f, i]));
    const idf = features.map((f) => Math.log((n + 1) / (df.get(f)! + 1)) + 1);
    // Sparse TF-IDF rows, L2-normalised.
    const ptr = new Int32Array(n + 1);
    const cols: number[] = [];
    const vals: number[] = [];
    for (let i = 0; i < n; i++) {
      const tf = new Map<number, number>();
      for (const t of docs[i]!) {
        const j = index.get(t);
        if (j !== undefined) tf.set(j, (tf.get(j) ?? 0) + 1);
      }
      const entries = [...tf].sort((a, b) => a[0] - b[0]).map(([j, c]) => [j, (1 + Math.log(c)) * idf[j]!] as const);
      const norm = Math.sqrt(entries.reduce((s, [, v]) => s + v * v, 0)) || 1;
      for (const [j, v] of entries) {
        cols.push(j);
        vals.push(v / norm);
      }
      ptr[i + 1] = cols.length;
    }
    const a: Sparse = { ptr, col: Int32Array.from(cols), val: Float64Array.from(vals), rows: n, cols: features.length };
    const k = Math.max(1, Math.min(opts.dims ?? 128, n - 1, features.length - 1));
    const l = Math.min(k + 8, n, features.length);
    const rand = mulberry32(opts.seed ?? 42);
    const omega = new Float64Array(a.cols * l);
    for (let i = 0; i < omega.length; i += 2) {
      // Box-Muller
      const u = Math.max(rand(), 1e-12);
      const v = rand();
      const r = Math.sqrt(-2 * Math.log(u));
      omega[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < omega.length) omega[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    let y = mulA(a, omega, l);
    orthonormalise(y, n, l);
    for (let it = 0; it < (opts.powerIterations ?? 2); it++) {
      // Only the small side is re-orthonormalised; the wide side is just rescaled (cheaper, and stable
      // enough in float64 for a couple of iterations on a decaying text spectrum).
      const z = mulAt(a, y, l);
      y = mulA(a, z, l);
      orthonormalise(y, n, l);
    }
    // B = Qᵀ A, kept transposed: Bt = Aᵀ Q (cols×l).
    const bt = mulAt(a, y, l);
    // C = B Bᵀ = Qᵀ (A Bt) (l×l), computed on the short side.
    const w = mulA(a, bt, l);
    const c = new Float64Array(l * l);
    for (let i = 0; i < n; i++) {
      const o = i * l;
      for (let p = 0; p < l; p++) {
        const qp = y[o + p]!;
        for (let q = 0; q < l; q++) c[p * l + q]! += qp * w[o + q]!;
      }
    }
    for (let p = 0; p < l; p++) for (let q = 0; q < p; q++) c[p * l + q] = c[q * l + p] = (c[p * l + q]! + c[q * l + p]!) / 2;
    const { values, vectors } = jacobiEigen(c, l);
    const order = [...values.keys()].sort((p, q) => values[q]! - values[p]!).slice(0, k);
    // V = Bᵀ U Σ⁻¹ (features × k): the right singular vectors.
    const uk = new Float64Array(l * k);
    for (let d = 0; d < k; d++) {
      const e = order[d]!;
      const sigma = Math.sqrt(Math.max(values[e]!, 1e-12));
      for (let p = 0; p < l; p++) uk[p * k + d] = vectors[p * l + e]! / sigma;
    }
    const proj = new Float64Array(a.cols * k);
    for (let f = 0; f < a.cols; f++) {
      const o = f * l;
      const r = f * k;
      for (let p = 0; p < l; p++) {
        const b = bt[o + p]!;
        if (b === 0) continue;
        const up = p * k;
        for (let d = 0; d < k; d++) proj[r + d]! += b * uk[up + d]!;
      }
    }
    // int8 with a scale per feature row.
    const q8 = new Int8Array(a.cols * k);
    const scales: number[] = [];
    for (let f = 0; f < a.cols; f++) {
      let max = 0;
      for (let d = 0; d < k; d++) max = Math.max(max, Math.abs(proj[f * k + d]!));
      const scale = max / 127 || 1;
      scales.push(scale);
      for (let d = 0; d < k; d++) q8[f * k + d] = Math.round(proj[f * k + d]! / scale);
    }
    return new LocalEmbeddings({ kind: 'local-lsa', version: 1, dims: k, features, idf, projection: Buffer.from(q8.buffer).toString('base64'), scales });
  }

  embedOne(text: string): number[] {
    const tf = new Map<number, number>();
    for (const t of featureTokens(text)) {
      const j = this.index.get(t);
      if (j !== undefined) tf.set(j, (tf.get(j) ?? 0) + 1);
    }
    const out = new Float64Array(this.dims);
    for (const [j, c] of tf) {
      const w = (1 + Math.log(c)) * this.idf[j]!;
      const o = j * this.dims;
      const scale = this.scales[j]!;
      for (let d = 0; d < this.dims; d++) out[d]! += w * Math.fround(this.q8[o + d]! * scale);
    }
    let norm = 0;
    for (let d = 0; d < this.dims; d++) norm += out[d]! ** 2;
    norm = Math.sqrt(norm);
    // An out-of-vocabulary text gets a fixed unit vector rather than NaNs.
    if (norm === 0) {
      const v = new Array<number>(this.dims).fill(0);
      v[0] = 1;
      return v;
    }
    return Array.from(out, (x) => x / norm);
  }

  override async embedDocuments(documents: string[]): Promise<number[][]> {
    return documents.map((d) => this.embedOne(d));
  }

  override async embedQuery(document: string): Promise<number[]> {
    return this.embedOne(document);
  }
}
