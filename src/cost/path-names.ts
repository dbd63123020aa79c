/** The levers of `framecost path`, in the order the waterfall applies them (path.ts; measured.ts reads them too). */
export const LEVER_NAMES = [
  "fewer-steps",
  "guidance-distillation",
  "step-distillation",
  "smaller-model",
  "lower-resolution",
  "lower-frame-rate",
  "feature-caching",
  "lower-precision",
  "cheapest-gpu",
  "higher-utilization",
  "lower-price",
] as const;
export type LeverName = (typeof LEVER_NAMES)[number];
