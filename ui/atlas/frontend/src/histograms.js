// Linked histograms below the map: one small bar chart per Histogram (all tracks light, the selected part
// dark, the brushed bins framed). Dragging across bins brushes a range: onBrush while dragging (the map
// greys the tracks outside at once), onBrushEnd when the mouse is released; a click inside a brushed
// range removes it.

import { sameBytes } from './protocol.js';

const BAR_H = 70;
const PAD = 4;
const NONE = 255;

export class Histograms {
  constructor(container, ranges, { onBrush, onBrushEnd }) {
    this.container = container;
    this.ranges = ranges; // () => the live {name: [first, last]} object of the map
    this.onBrush = onBrush;
    this.onBrushEnd = onBrushEnd;
    this.items = [];
    this.rows = new Uint32Array(0);
    this.signature = '';
  }

  set(meta, codes, n) {
    const signature = JSON.stringify(meta) + n;
    if (signature === this.signature && sameBytes(this.codes, codes)) return;
    this.signature = signature;
    this.codes = codes;
    this.container.replaceChildren();
    this.items = meta.map((hist, k) => {
      const own = codes.subarray(k * n, (k + 1) * n);
      const counts = new Float64Array(hist.bins.length);
      for (let i = 0; i < n; i++) if (own[i] !== NONE) counts[own[i]] += 1;
      const card = document.createElement('div');
      card.className = 'hist';
      const title = document.createElement('div');
      title.className = 'hist-title';
      const canvas = document.createElement('canvas');
      card.append(title, canvas);
      this.container.append(card);
      const item = { ...hist, codes: own, counts, sel: new Float64Array(hist.bins.length), canvas, title };
      this.listen(item);
      return item;
    });
    this.setSelection(this.rows);
  }

  setSelection(rows) {
    this.rows = rows; // kept for a rebuild
    for (const item of this.items) {
      item.sel.fill(0);
      for (const row of rows) if (item.codes[row] !== NONE) item.sel[item.codes[row]] += 1;
    }
  }

  binAt(item, event) {
    const rect = item.canvas.getBoundingClientRect();
    const t = (event.clientX - rect.left - PAD) / (rect.width - 2 * PAD);
    return Math.max(0, Math.min(item.bins.length - 1, Math.floor(t * item.bins.length)));
  }

  listen(item) {
    item.canvas.addEventListener('mousedown', (down) => {
      down.preventDefault();
      const start = this.binAt(item, down);
      const before = this.ranges()[item.name];
      let moved = false;
      const move = (event) => {
        const bin = this.binAt(item, event);
        if (bin === start && !moved) return;
        moved = true;
        this.ranges()[item.name] = [Math.min(start, bin), Math.max(start, bin)];
        this.onBrush();
      };
      const up = () => {
        window.removeEventListener('mousemove', move);
        window.removeEventListener('mouseup', up);
        if (!moved) {
          if (before && start >= before[0] && start <= before[1]) delete this.ranges()[item.name];
          else this.ranges()[item.name] = [start, start];
          this.onBrush();
        }
        this.onBrushEnd();
      };
      window.addEventListener('mousemove', move);
      window.addEventListener('mouseup', up);
    });
    item.canvas.addEventListener('mousemove', (event) => {
      const bin = this.binAt(item, event);
      item.canvas.title = `${item.bins[bin]}: ${item.counts[bin]} tracks, ${item.sel[bin]} selected`;
    });
  }

  draw(width) {
    const dpr = window.devicePixelRatio || 1;
    const cols = Math.max(1, Math.min(this.items.length, Math.floor(width / 260)));
    const w = Math.floor((width - 12 * (cols - 1)) / cols);
    for (const item of this.items) {
      const range = this.ranges()[item.name];
      const total = item.counts.reduce((a, b) => a + b, 0);
      const selected = item.sel.reduce((a, b) => a + b, 0);
      const label = range ? ` · ${item.bins[range[0]]} … ${item.bins[range[1]]}` : '';
      item.title.textContent = `${item.name} (${total}${selected ? `, ${selected} selected` : ''})${label}`;
      const { canvas } = item;
      canvas.style.width = `${w}px`;
      canvas.style.height = `${BAR_H + 16}px`;
      canvas.width = Math.floor(w * dpr);
      canvas.height = Math.floor((BAR_H + 16) * dpr);
      const ctx = canvas.getContext('2d');
      ctx.scale(dpr, dpr);
      const nb = item.bins.length;
      const bw = (w - 2 * PAD) / nb;
      const max = Math.max(1, ...item.counts);
      if (range) {
        ctx.fillStyle = 'rgba(0, 120, 215, 0.12)';
        ctx.fillRect(PAD + range[0] * bw, 0, (range[1] - range[0] + 1) * bw, BAR_H);
      }
      for (let b = 0; b < nb; b++) {
        const out = range && (b < range[0] || b > range[1]);
        const hAll = (item.counts[b] / max) * (BAR_H - 4);
        const hSel = (item.sel[b] / max) * (BAR_H - 4);
        ctx.fillStyle = out ? '#dcdcdc' : '#9db7d5';
        ctx.fillRect(PAD + b * bw + 0.5, BAR_H - hAll, Math.max(1, bw - 1), hAll);
        ctx.fillStyle = '#e4572e';
        ctx.fillRect(PAD + b * bw + 0.5, BAR_H - hSel, Math.max(1, bw - 1), hSel);
      }
      ctx.fillStyle = '#555';
      ctx.font = '10px system-ui, sans-serif';
      ctx.textBaseline = 'top';
      ctx.textAlign = 'left';
      ctx.fillText(item.bins[0], PAD, BAR_H + 3);
      ctx.textAlign = 'right';
      ctx.fillText(item.bins[nb - 1], w - PAD, BAR_H + 3);
    }
  }

  // Rows outside any brushed range (a track with no value is outside a brush on that histogram).
  markOutside(grey) {
    for (const item of this.items) {
      const range = this.ranges()[item.name];
      if (!range) continue;
      const [lo, hi] = range;
      const { codes } = item;
      for (let i = 0; i < codes.length; i++) if (codes[i] < lo || codes[i] > hi) grey[i] = 1;
    }
  }
}
