// A renderer for regl-scatterplot that draws straight into the map's canvas. The library's own renderer
// draws into a float32 framebuffer on a hidden screen-sized canvas, then copies it with a 2-D drawImage: in
// software WebGL (SwiftShader) that readback and the 4x multisampling cost ~300 ms a frame whatever the
// number of points. Here: no multisampling, no float framebuffer, no copy (same interface as its renderer).
// defer() may skip a frame (the canvas keeps its last image); rendered() is told after each real one.
import createRegl from 'regl';

const EXTENSIONS = ['OES_texture_float', 'OES_element_index_uint', 'WEBGL_color_buffer_float', 'EXT_float_blend'];

export function createDirectRenderer(canvas, { defer = () => false, rendered = () => {} } = {}) {
  const gl = canvas.getContext('webgl', { antialias: false, preserveDrawingBuffer: false, alpha: true, premultipliedAlpha: true });
  if (!gl) throw new Error('no WebGL context');
  const extensions = EXTENSIONS.filter((name) => gl.getExtension(name));
  const regl = createRegl({ gl, extensions });
  const drawFns = new Set();
  let isDestroyed = false;
  let gamma = 1;
  const frame = regl.frame(() => {
    for (const draw of drawFns) draw();
  });
  return {
    get canvas() { return canvas; },
    get regl() { return regl; },
    get gamma() { return gamma; },
    set gamma(value) { gamma = +value; },
    get isSupported() { return extensions.length === EXTENSIONS.length; },
    get isDestroyed() { return isDestroyed; },
    render(draw) {
      if (defer()) return;
      regl.clear({ color: [0, 0, 0, 0], depth: 1 });
      draw();
      rendered();
    },
    resize() {}, // the scatterplot sizes the canvas (width, height "auto")
    onFrame(draw) {
      drawFns.add(draw);
      return () => drawFns.delete(draw);
    },
    refresh() { regl.poll(); },
    destroy() {
      isDestroyed = true;
      frame.cancel();
      regl.destroy();
    },
  };
}
