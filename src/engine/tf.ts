// The single place the rest of the program gets tfjs from, so every stage
// shares one engine (and one registered backend). Only the core and the two
// embedded backends: the full @tensorflow/tfjs bundle (layers, converter,
// data, webgl) costs ~70 MB of resident memory that generation never uses.
// Code that differentiates imports ./tf-grad.ts, which registers the gradients.
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";

export { tf };
