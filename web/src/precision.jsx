// The precisions a model's dense layers run in (docs/models.md, "Precision
// per model"): the list the server accepts, what each costs, and the badge
// the pages show beside a loaded model.
import { api } from './api.js';

export const PRECISIONS = ['f32', 'fp16', 'bf16', 'int8'];

export const PRECISION_HINT = {
  f32: 'f32: full precision',
  fp16: 'fp16: weights at half size, widened to f32 in the kernel',
  bf16: 'bf16: weights at half size (coarser rounding than fp16)',
  int8: 'int8: dynamic quantization, the fastest; small accuracy cost',
};

// Short names for pickers; PRECISION_HINT says more.
export const PRECISION_LABEL = {
  f32: 'f32 (full)',
  fp16: 'fp16 (half-size weights)',
  bf16: 'bf16 (half-size weights)',
  int8: 'int8 (quantized, fastest)',
};

export function PrecisionBadge({ precision, loading }) {
  if (!precision) return <span class="muted">—</span>;
  return (
    <span class={`badge prec prec-${precision}`} data-testid="precision" data-precision={precision}
      title={`${PRECISION_HINT[precision] || precision}${loading ? ' (loading)' : ''}`}>
      {precision}
    </span>
  );
}

// GET /health (public): `precision` is what the next load without one of its
// own uses, `loaded_precisions` counts the loaded models per precision.
export const getHealth = () => api.get('/health');

// {"f32": 2, "int8": 1} -> [["f32", 2], ["int8", 1]] in PRECISIONS' order.
export const precisionCounts = (counts) =>
  Object.entries(counts || {})
    .filter(([, n]) => n > 0)
    .sort((a, b) => PRECISIONS.indexOf(a[0]) - PRECISIONS.indexOf(b[0]));
