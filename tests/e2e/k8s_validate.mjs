// Validates Kubernetes objects against the API schemas: reads a JSON array of objects
// (kubectl kustomize's output, converted by tests/integration/deploy_test.py) on stdin,
// checks each with the model of its apiVersion and kind from the pinned npm packages
// kubernetes-models (the Kubernetes OpenAPI schemas) and
// @kubernetes-models/prometheus-operator (the ServiceMonitor CRD's schema). An object of
// a kind neither package knows is an error. Prints one line per object; exit 1 on any error.
import { readFileSync } from "node:fs";

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const candidates = [];
  if (group === "monitoring.coreos.com")
    candidates.push(`@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`);
  else candidates.push(`kubernetes-models/${group ? group + "/" : ""}${version}/${kind}`);
  for (const path of candidates) {
    try {
      const mod = await import(path);
      if (mod[kind]) return mod[kind];
    } catch (e) {
      if (e.code !== "ERR_MODULE_NOT_FOUND" && e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw e;
    }
  }
  return null;
}

const objects = JSON.parse(readFileSync(0, "utf8"));
let errors = 0;
for (const obj of objects) {
  const name = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`;
  const Model = await modelFor(obj.apiVersion ?? "", obj.kind ?? "");
  if (!Model) {
    console.log(`ERROR ${name}: no schema for this apiVersion and kind`);
    errors++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`ERROR ${name}: ${e.message}`);
    errors++;
  }
}
process.exit(errors ? 1 : 0);
