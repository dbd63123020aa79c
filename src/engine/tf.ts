// The single place the rest of the program gets tfjs from, so every stage
// shares one engine (and one registered backend).
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

export { tf };
