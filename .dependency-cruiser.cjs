// Enforces DESIGN.md's one-way data flow: a stage imports only stages before it.
const order = ["engine", "data", "model", "diffusion", "meter", "cost", "media", "quality", "report", "run", "serve", "cli"];
const forbidden = order.map((stage, i) => ({
  name: `no-${stage}-to-later`,
  comment: `src/${stage} may import only earlier stages (${order.slice(0, i).join(", ") || "none"}) and util`,
  severity: "error",
  from: { path: `^src/${stage}/` },
  to: { path: `^src/(${order.slice(i + 1).join("|") || "__none__"})/` },
}));
forbidden.push({
  name: "util-is-a-leaf",
  severity: "error",
  from: { path: "^src/util/" },
  to: { path: `^src/(${order.join("|")})/` },
});
forbidden.push({ name: "no-circular", severity: "error", from: {}, to: { circular: true } });
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
