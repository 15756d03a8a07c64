// The Streamlit components v1 protocol (what streamlit-component-lib does, without its React and Arrow):
// the iframe says it is ready, Streamlit posts "render" messages with the args (bytes args arrive as
// Uint8Array), the iframe posts its height and its value (bytes: a Uint8Array, which Python receives as bytes).

const send = (type, data) => window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, '*');

export function onRender(handler) {
  window.addEventListener('message', (event) => {
    if (event.data && event.data.type === 'streamlit:render') handler(event.data.args);
  });
  send('streamlit:componentReady', { apiVersion: 1 });
}

let lastHeight = -1;
export function setFrameHeight(height) {
  if (height !== lastHeight) {
    lastHeight = height;
    send('streamlit:setFrameHeight', { height });
  }
}

let lastSeq = 0;
// One finished gesture: uint32 LE header length, the JSON header, padding to 4 bytes, the rows as uint32 LE
// (ui.atlas.decode_event reads it). seq is from the clock so it keeps increasing across page changes.
export function encodeEvent(kind, rows, ranges, drag) {
  const seq = Math.max(Date.now(), lastSeq + 1);
  lastSeq = seq;
  const header = new TextEncoder().encode(JSON.stringify({ kind, ranges, drag, seq }));
  const start = 4 + header.length + ((4 - ((4 + header.length) % 4)) % 4);
  const buffer = new ArrayBuffer(start + rows.length * 4);
  const view = new DataView(buffer);
  view.setUint32(0, header.length, true);
  new Uint8Array(buffer).set(header, 4);
  for (let i = 0; i < rows.length; i++) view.setUint32(start + 4 * i, rows[i], true);
  return { bytes: new Uint8Array(buffer), seq };
}

export function sendValue(bytes) {
  send('streamlit:setComponentValue', { value: bytes, dataType: 'bytes' });
}

// Rows sent by Python as uint32 LE bytes.
export function rowsOf(bytes) {
  if (!bytes || bytes.byteLength === 0) return new Uint32Array(0);
  const copy = new Uint8Array(bytes); // aligned
  return new Uint32Array(copy.buffer, 0, copy.byteLength >> 2);
}

export function sameBytes(a, b) {
  if (a === b) return true;
  if (!a || !b || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
