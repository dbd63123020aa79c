/**
 * The cost stage's public surface: RunRecord x GPU catalog x prices -> USD
 * per video minute, locally and extrapolated; production-scale scenarios;
 * the inverse solve; the path to a target.
 */

export { defaultMfu, parallelModel, speedup } from "./calibration.ts";
export {
  type Catalog,
  type ChosenPrice,
  chosenPrice,
  type Gpu,
  getGpu,
  gpuIds,
  type HostedApi,
  loadCatalog,
  mergeCatalog,
  shippedCatalog,
} from "./catalog.ts";
export { waterfallPlot } from "./chart.ts";
export { type InverseResult, solveInverse } from "./inverse.ts";
export { configShape, modelNames, modelShape } from "./models.ts";
export {
  buildPath,
  LEVER_NAMES,
  type LeverName,
  measureStepsLever,
  type PathResult,
  parseLeversFile,
  type SweepLike,
} from "./path.ts";
export {
  DEFAULT_SUMMARY_GPUS,
  type Extrapolation,
  extrapolateRun,
  formatRunCostSummary,
  type LocalCost,
  localCost,
  type MeteredRun,
  type RunCostSummary,
  type SummaryOptions,
  summarizeRunCost,
  usd,
} from "./run.ts";
export { clipFlops, evaluateScenario, type Scenario, type ScenarioOptions } from "./scenarios.ts";
export { type DitShape, nfeFlops, nfeFlopsAtTokens } from "./shapes.ts";
