// Gradients of tfjs's built-in ops are registered by the full @tensorflow/tfjs
// bundle (into the same engine as ./tf.ts). Training and gradient tests import
// this module; inference does not need it.
import "@tensorflow/tfjs";
import { tf } from "./tf.ts";

export { tf };
