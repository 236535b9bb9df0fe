#!/usr/bin/env python3
"""Offline checks of the deployment files in deploy/ (run by deploy/validate, which CI runs).

What the schema validators cannot see:
- every YAML and JSON file parses, and the TOML embedded in the Kubernetes ConfigMaps parses;
- Kubernetes: every workload has liveness and readiness probes on /livez and /readyz, a
  restricted security context (non-root, read-only root filesystem, all capabilities dropped,
  no privilege escalation, seccomp RuntimeDefault), resource requests and a memory limit; the
  log's StatefulSet has exactly one replica; every StatefulSet has a PodDisruptionBudget and a
  NetworkPolicy selecting its pods;
- Kubernetes on PostgreSQL: a Deployment only for store = "postgres" (three replicas, rolling
  update with maxUnavailable 1, a PodDisruptionBudget with minAvailable 2, topology spread or
  anti-affinity, egress to 5432, no volume claims); its database URL comes from a Secret
  through an init container, never from the ConfigMap; it is an alternative to sealtrail.yaml
  with the same Services, pod labels, key Secret and origin;
- the Dockerfile: stages defined before use, pinned base images, a distroless non-root default
  stage, a .dockerignore keeping target/ out of the build context;
- compose: our services are read-only, drop every capability and bind ports to 127.0.0.1; every
  named volume is declared and every bind-mounted file exists; the server has a 2-of-3 policy
  (checked on the configs init.sh writes, see --compose-configs);
- compose-ha: three identical instances (image, command, read-only key and config volumes)
  waiting for init and a healthy PostgreSQL (official image, password from a secret, fsync and
  synchronous_commit not off); haproxy.cfg's servers are exactly those services on their port,
  checked with GET /readyz (a route the server has), with redispatch and timeouts above the
  server's; on the configs its init.sh writes (--compose-ha-configs): store = "postgres", a URL
  that matches the postgres service, a submitter token, no per-address limits, witnesses that
  reach the log through the load balancer;
- Grafana: panel ids are unique, every query uses the datasource variable; every PromQL query of
  the dashboard is written to a rules file for `promtool check rules` (--write-dashboard-rules);
- metric names used by the alerts and the dashboard are defined in the Rust sources (server
  metrics are `sealtrail_` + name, witness metrics `sealtrail_witness_` + name), except the
  names in PENDING_METRICS, which other branches add: those only warn.

Exit status 0 when every check passes, 1 otherwise; each failure is printed on its own line.
"""

import argparse
import hashlib
import json
import pathlib
import re
import sys
import tomllib
import urllib.parse

import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent
ROOT = DEPLOY.parent

# Metric names the deployment files use before the code that defines them is merged. Remove a
# name once it is defined (the check says so). Each entry: name -> where it comes from.
PENDING_METRICS = {
    "sealtrail_witness_http_requests_total": "witness branch",
}

# PromQL words that look like metric names but are not.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "rate", "increase", "irate", "time", "absent",
    "histogram_quantile", "predict_linear", "max_over_time", "min_over_time", "changes",
    "label_values", "bool", "offset", "le", "up", "humanize", "humanizePercentage",
    "humanizeDuration", "value", "labels",
}


class Checker:
    def __init__(self):
        self.failures = []
        self.warnings = []

    def fail(self, where, msg):
        self.failures.append(f"{where}: {msg}")

    def warn(self, where, msg):
        self.warnings.append(f"{where}: {msg}")

    def expect(self, cond, where, msg):
        if not cond:
            self.fail(where, msg)
        return cond


def rel(path):
    return str(pathlib.Path(path).resolve().relative_to(ROOT))


def load_yaml_docs(c, path):
    try:
        with open(path, encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        c.fail(rel(path), f"not valid YAML: {e}")
        return []


def parse_all(c):
    """Every YAML and JSON file under deploy/ parses."""
    docs = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.suffix in (".yml", ".yaml"):
            docs[path] = load_yaml_docs(c, path)
        elif path.suffix == ".json":
            try:
                docs[path] = [json.loads(path.read_text(encoding="utf-8"))]
            except json.JSONDecodeError as e:
                c.fail(rel(path), f"not valid JSON: {e}")
    return docs


# --- Kubernetes -------------------------------------------------------------------------------


def get(obj, *keys):
    for k in keys:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def check_container_security(c, where, sc, pod_sc):
    def val(key):
        v = get(sc, key)
        return get(pod_sc, key) if v is None else v

    c.expect(val("runAsNonRoot") is True, where, "runAsNonRoot must be true")
    c.expect(get(sc, "allowPrivilegeEscalation") is False, where,
             "allowPrivilegeEscalation must be false")
    c.expect(get(sc, "readOnlyRootFilesystem") is True, where,
             "readOnlyRootFilesystem must be true")
    c.expect(get(sc, "capabilities", "drop") == ["ALL"], where, "capabilities.drop must be [ALL]")
    c.expect(not get(sc, "capabilities", "add"), where, "no capability may be added")
    c.expect(get(sc, "privileged") in (None, False), where, "must not be privileged")
    seccomp = get(sc, "seccompProfile", "type") or get(pod_sc, "seccompProfile", "type")
    c.expect(seccomp == "RuntimeDefault", where, "seccompProfile.type must be RuntimeDefault")


def check_resources(c, where, res):
    c.expect(get(res, "requests", "cpu") is not None, where, "resources.requests.cpu is missing")
    c.expect(get(res, "requests", "memory") is not None, where,
             "resources.requests.memory is missing")
    c.expect(get(res, "limits", "memory") is not None, where, "resources.limits.memory is missing")


def check_probe(c, where, probe, path):
    c.expect(probe is not None, where, f"probe on {path} is missing")
    if probe is not None:
        c.expect(get(probe, "httpGet", "path") == path, where, f"probe must GET {path}")


def selecting(policies, kind, labels):
    """The policies of `kind` (PodDisruptionBudget, NetworkPolicy) selecting pods with `labels`."""
    return [
        p for p in policies.get(kind, [])
        if labels and (get(p, "spec", "selector", "matchLabels")
                       or get(p, "spec", "podSelector", "matchLabels")) == labels
    ]


def check_pod(c, where, pod):
    """What every workload's pod template needs: restricted security, probes, resources, the
    signing key from a Secret, no service account token."""
    pod_sc = pod.get("securityContext") or {}
    c.expect(pod_sc.get("runAsNonRoot") is True, where, "pod runAsNonRoot must be true")
    c.expect(get(pod_sc, "seccompProfile", "type") == "RuntimeDefault", where,
             "pod seccompProfile must be RuntimeDefault")
    c.expect(pod.get("automountServiceAccountToken") is False, where,
             "automountServiceAccountToken must be false (the services need no API access)")
    containers = pod.get("containers") or []
    c.expect(bool(containers), where, "no containers")
    for ctr in containers:
        cw = f"{where} container {ctr.get('name')}"
        check_probe(c, cw, ctr.get("livenessProbe"), "/livez")
        check_probe(c, cw, ctr.get("readinessProbe"), "/readyz")
        check_resources(c, cw, ctr.get("resources"))
        check_container_security(c, cw, ctr.get("securityContext") or {}, pod_sc)
    for ctr in pod.get("initContainers") or []:
        cw = f"{where} initContainer {ctr.get('name')}"
        check_resources(c, cw, ctr.get("resources"))
        check_container_security(c, cw, ctr.get("securityContext") or {}, pod_sc)
    uses_secret = any(get(v, "secret", "secretName") for v in pod.get("volumes") or [])
    c.expect(uses_secret, where, "the signing key must come from a Secret volume")


def check_statefulset(c, where, sts, policies):
    spec = sts.get("spec", {})
    name = get(sts, "metadata", "name")
    labels = get(spec, "selector", "matchLabels") or {}
    c.expect(spec.get("replicas") == 1, where,
             "replicas must be 1 (one writer per log, one pod per witness identity)")
    c.expect(bool(spec.get("volumeClaimTemplates")), where, "needs a volumeClaimTemplate (PVC)")
    check_pod(c, where, get(spec, "template", "spec") or {})
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        c.expect(bool(selecting(policies, kind, labels)), where,
                 f"no {kind} selects the pods of {name}")


def pod_config(pod, configmaps):
    """(ConfigMap name, key, TOML text) of the sealtrail.toml a pod's volumes carry, or None."""
    for v in pod.get("volumes") or []:
        cm = configmaps.get(get(v, "configMap", "name"))
        for key, text in (get(cm, "data") or {}).items():
            if key.endswith(".toml"):
                return get(cm, "metadata", "name"), key, text
    return None


def volume_of(ctr, path):
    """The volume a container mounts at the directory holding `path`, or None."""
    parent = str(pathlib.PurePosixPath(path).parent)
    for m in ctr.get("volumeMounts") or []:
        if m.get("mountPath") == parent:
            return m
    return None


def check_deployment(c, where, dep, policies, configmaps):
    """The log on PostgreSQL: several instances of one log. What keeps them one log (one key,
    one configuration, store = "postgres") and available (replicas, budget, spread, rollout)."""
    spec = dep.get("spec", {})
    labels = get(spec, "selector", "matchLabels") or {}
    pod = get(spec, "template", "spec") or {}
    found = pod_config(pod, configmaps)
    config = {}
    if found:
        try:
            config = tomllib.loads(found[2])
        except tomllib.TOMLDecodeError:
            pass  # reported with the ConfigMap
    if not c.expect(config.get("store") == "postgres", where,
                    "use a StatefulSet: only instances sharing a PostgreSQL database (store = "
                    "\"postgres\" in the ConfigMap the pods mount) may run as a Deployment; two "
                    "pods on embedded stores would be two logs under one key"):
        return
    replicas = spec.get("replicas")
    c.expect(replicas == 3, where, "replicas must be 3")
    check_pod(c, where, pod)
    c.expect(not any("persistentVolumeClaim" in v for v in pod.get("volumes") or []), where,
             "the instances keep no state: no PersistentVolumeClaim")
    c.expect(get(spec, "strategy", "type") == "RollingUpdate"
             and get(spec, "strategy", "rollingUpdate", "maxUnavailable") == 1, where,
             "strategy must be RollingUpdate with maxUnavailable 1")
    c.expect(bool(pod.get("topologySpreadConstraints")
                  or get(pod, "affinity", "podAntiAffinity")), where,
             "needs topologySpreadConstraints or podAntiAffinity (instances on different nodes)")
    pdbs = selecting(policies, "PodDisruptionBudget", labels)
    c.expect(len(pdbs) == 1 and get(pdbs[0], "spec", "minAvailable") == 2, where,
             "one PodDisruptionBudget with minAvailable 2 must select its pods")
    nps = selecting(policies, "NetworkPolicy", labels)
    egress_ports = {p.get("port") for np in nps for rule in get(np, "spec", "egress") or []
                    for p in rule.get("ports") or []}
    c.expect(bool(nps) and 5432 in egress_ports, where,
             "a NetworkPolicy selecting its pods must allow egress to PostgreSQL (5432)")
    # The configuration: the database URL (with its password) is not in the ConfigMap; an init
    # container appends it from a Secret to [postgres], which must be the last table.
    cw = f"{where} ConfigMap {found[0]} {found[1]}"
    pg = config.get("postgres")
    if c.expect(isinstance(pg, dict), cw, "needs a [postgres] section"):
        c.expect("url" not in pg, cw, "the [postgres] url holds a password: it comes from a "
                 "Secret, not the ConfigMap")
        headers = re.findall(r"^\s*\[+\s*([^\]]+?)\s*\]", found[2], re.M)
        c.expect(bool(headers) and headers[-1] == "postgres", cw,
                 "[postgres] must be the last section (the init container appends its url)")
    containers = pod.get("containers") or []
    server = containers[0] if containers else {}
    args = server.get("args") or []
    config_path = args[args.index("--config") + 1] if "--config" in args[:-1] else None
    mount = volume_of(server, config_path) if config_path else None
    if c.expect(mount is not None, where, "the container must read --config from a volume"):
        writers = [i for i in pod.get("initContainers") or []
                   if any(m.get("name") == mount["name"] and not m.get("readOnly")
                          for m in i.get("volumeMounts") or [])]
        c.expect(len(writers) == 1 and config_path in " ".join(writers[0].get("command") or []),
                 where, f"one init container must write {config_path} (the ConfigMap's file and "
                 "the database URL from the Secret)")
        if writers:
            wvols = {m.get("name") for m in writers[0].get("volumeMounts") or []}
            c.expect(any(v.get("secret") and v.get("name") in wvols
                         for v in pod.get("volumes") or []), where,
                     "the config-writing init container must read the URL from a Secret")
    # The key and the data directory (which holds only the key) are in a memory volume: the
    # free-space guard must not watch it.
    key = config.get("key_file") or f"{config.get('data_dir', '')}/log.key"
    key_mount = volume_of(server, key)
    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    if c.expect(key_mount is not None, where, f"the key_file {key} must be on a mounted volume"):
        key_vol = vols.get(key_mount["name"]) or {}
        c.expect(get(key_vol, "emptyDir", "medium") == "Memory", where,
                 "the signing key must be copied into a memory-backed emptyDir")
        if config.get("data_dir") == key_mount.get("mountPath"):
            c.expect(get(config, "limits", "min_free_bytes") == 0, cw,
                     "data_dir is the key's small memory volume: limits.min_free_bytes must be 0")


def check_kubernetes(c, docs):
    objects = []
    for path, ds in docs.items():
        if path.parent.name == "kubernetes":
            objects += [(path, d) for d in ds]
    c.expect(bool(objects), "deploy/kubernetes", "no manifests found")
    by_kind = {}
    for _, obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append(obj)
    # A workload's budget, policies and config come from its own file: sealtrail.yaml and
    # sealtrail-postgres.yaml are alternatives with objects of the same names.
    in_file = {}
    for path, obj in objects:
        in_file.setdefault(path, {}).setdefault(obj.get("kind"), []).append(obj)
    for path, obj in objects:
        where = f"{rel(path)} {obj.get('kind')}/{get(obj, 'metadata', 'name')}"
        local = in_file[path]
        if obj.get("kind") == "StatefulSet":
            check_statefulset(c, where, obj, local)
        if obj.get("kind") == "Deployment":
            configmaps = {get(o, "metadata", "name"): o for o in local.get("ConfigMap", [])}
            check_deployment(c, where, obj, local, configmaps)
        if obj.get("kind") == "ConfigMap":
            for key, text in (obj.get("data") or {}).items():
                if key.endswith(".toml"):
                    try:
                        tomllib.loads(text)
                    except tomllib.TOMLDecodeError as e:
                        c.fail(f"{where} {key}", f"not valid TOML: {e}")
    names = {get(o, "metadata", "name") for o in by_kind.get("StatefulSet", [])}
    c.expect({"sealtrail", "sealtrail-witness"} <= names, "deploy/kubernetes",
             "expected the StatefulSets sealtrail and sealtrail-witness")
    check_kubernetes_alternatives(c, docs)


def check_kubernetes_alternatives(c, docs):
    """sealtrail.yaml (embedded store) and sealtrail-postgres.yaml are alternatives: the witness
    manifest, its NetworkPolicy and prometheus-kubernetes.yml must work with either, so both
    have the same Services, pod labels, signing-key Secret and origin."""
    kdir = DEPLOY / "kubernetes"
    embedded, pg = kdir / "sealtrail.yaml", kdir / "sealtrail-postgres.yaml"
    if not c.expect(pg in docs, rel(kdir), "sealtrail-postgres.yaml is missing"):
        return
    where = rel(pg)

    def index(path):
        return {(o.get("kind"), get(o, "metadata", "name")): o for o in docs.get(path) or []}

    a, b = index(embedded), index(pg)
    for name in ("sealtrail", "sealtrail-headless"):
        sa, sb = a.get(("Service", name)), b.get(("Service", name))
        c.expect(sa is not None and sb is not None and sa.get("spec") == sb.get("spec"), where,
                 f"Service {name} must be the same as in sealtrail.yaml")
    sts, dep = a.get(("StatefulSet", "sealtrail")), b.get(("Deployment", "sealtrail"))
    if not c.expect(sts is not None and dep is not None, where,
                    "expected the StatefulSet sealtrail in sealtrail.yaml and the Deployment "
                    "sealtrail here"):
        return
    c.expect(get(sts, "spec", "template", "metadata", "labels")
             == get(dep, "spec", "template", "metadata", "labels"), where,
             "the pods must carry the same labels as the StatefulSet's (NetworkPolicies and "
             "Services select them)")

    def secrets(obj):
        return {get(v, "secret", "secretName")
                for v in get(obj, "spec", "template", "spec", "volumes") or [] if v.get("secret")}

    c.expect("sealtrail-signing-key" in secrets(sts) & secrets(dep), where,
             "both must take the signing key from the Secret sealtrail-signing-key")

    def origin(path, obj):
        cms = {get(o, "metadata", "name"): o for o in docs.get(path) or []
               if o.get("kind") == "ConfigMap"}
        found = pod_config(get(obj, "spec", "template", "spec") or {}, cms)
        try:
            return tomllib.loads(found[2]).get("origin") if found else None
        except tomllib.TOMLDecodeError:
            return None

    c.expect(origin(embedded, sts) is not None and origin(embedded, sts) == origin(pg, dep),
             where, "the origin must be the one of sealtrail.yaml (the witness manifest's)")


# --- container build --------------------------------------------------------------------------


def dockerfile_instructions(text):
    """(instruction, arguments) pairs, with continuation lines joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not cur:
            continue
        cur += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            if cur.strip():
                word, _, rest = cur.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def check_dockerfile(c):
    """No container engine here, so the build is read, not run: stages are defined before use,
    images are pinned (no implicit latest), and the default (last) stage runs as non-root."""
    path = DEPLOY / "container" / "Dockerfile"
    where = rel(path)
    stages, last_user, last_from = [], None, None
    for word, args in dockerfile_instructions(path.read_text(encoding="utf-8")):
        if word == "FROM":
            parts = args.split()
            image = parts[0]
            c.expect(":" in image.split("/")[-1] and not image.endswith(":latest"), where,
                     f"base image {image} must have a pinned tag")
            stages.append(parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None)
            last_user, last_from = None, image
        elif word == "USER":
            last_user = args
        elif word == "ADD":
            c.expect("://" not in args, where, "ADD of a URL: download in a stage and verify")
        for ref in re.findall(r"--from=(\S+)", args):
            c.expect(ref in stages[:-1], where, f"--from={ref} is not an earlier stage")
    c.expect(stages and stages[-1] == "runtime", where, "the last (default) stage must be runtime")
    c.expect(last_from is not None and "distroless" in last_from, where,
             "the runtime stage must be distroless (no shell, no package manager)")
    uid = (last_user or "0").split(":")[0]
    c.expect(uid not in ("0", "root"), where, "the runtime stage must end with a non-root USER")
    ignore = DEPLOY / "container" / "Dockerfile.dockerignore"
    c.expect(ignore.exists() and "**/target" in ignore.read_text(encoding="utf-8"), rel(ignore),
             "must exist and exclude **/target from the build context")


# --- compose ----------------------------------------------------------------------------------


def check_compose_services(c, path, compose):
    """What every compose file here needs: our services read-only without capabilities, ports on
    127.0.0.1, every named volume declared and every bind-mounted file present."""
    services = compose.get("services") or {}
    declared = set((compose.get("volumes") or {}).keys())
    for name, svc in services.items():
        where = f"{rel(path)} service {name}"
        ours = str(svc.get("image", "")).startswith("sealtrail")
        if ours:
            c.expect(svc.get("read_only") is True, where, "read_only must be true")
            c.expect(svc.get("cap_drop") == ["ALL"], where, "cap_drop must be [ALL]")
            c.expect("no-new-privileges:true" in (svc.get("security_opt") or []), where,
                     "security_opt must hold no-new-privileges:true")
        for port in svc.get("ports") or []:
            c.expect(str(port).startswith("127.0.0.1:"), where,
                     f"port {port} must be published on 127.0.0.1 only")
        for vol in svc.get("volumes") or []:
            src = str(vol).split(":")[0]
            if src.startswith((".", "/")):
                c.expect((path.parent / src).exists(), where, f"bind mount {src} does not exist")
            else:
                c.expect(src in declared, where, f"volume {src} is not declared")
    return services


def check_compose(c, docs):
    path = DEPLOY / "compose" / "compose.yaml"
    if not c.expect(path in docs and docs[path], rel(path), "missing"):
        return
    services = check_compose_services(c, path, docs[path][0])
    for want in ("init", "sealtrail", "witness1", "witness2", "witness3", "prometheus", "grafana"):
        c.expect(want in services, rel(path), f"service {want} is missing")
    for name in ("sealtrail", "witness1", "witness2", "witness3"):
        dep = get(services, name, "depends_on", "init", "condition")
        c.expect(dep == "service_completed_successfully", f"{rel(path)} service {name}",
                 "must wait for init to complete")


def check_compose_configs(c, config_dir, log_path=None):
    """The configs init.sh wrote: a 2-of-3 log, each witness knowing the log and two peers. The
    log's config is config_dir/sealtrail.toml unless log_path names another file."""
    d = pathlib.Path(config_dir)
    try:
        log = tomllib.loads(pathlib.Path(log_path or d / "sealtrail.toml").read_text())
        witnesses = [tomllib.loads((d / f"witness{i}.toml").read_text()) for i in (1, 2, 3)]
    except (OSError, tomllib.TOMLDecodeError) as e:
        c.fail("init.sh output", str(e))
        return
    w = log.get("witnessing", {})
    c.expect(w.get("quorum") == 2, "init.sh sealtrail.toml", "quorum must be 2")
    urls = [x.get("url") for x in w.get("witnesses", [])]
    c.expect(urls == [f"http://witness{i}:8081" for i in (1, 2, 3)], "init.sh sealtrail.toml",
             f"witness URLs {urls}")
    vkeys = [x.get("vkey") for x in w.get("witnesses", [])]
    if not c.expect(len(set(vkeys)) == 3 and all(vkeys), "init.sh sealtrail.toml",
                    "three distinct witness keys expected"):
        return
    names = [x.get("name") for x in witnesses]
    for i, wc in enumerate(witnesses, start=1):
        where = f"init.sh witness{i}.toml"
        c.expect(vkeys[i - 1].startswith(f"{wc.get('name')}+"), where,
                 "the log must list this witness's own key")
        logs = wc.get("logs", [])
        c.expect(len(logs) == 1 and logs[0].get("origin") == log.get("origin"), where,
                 "must cosign exactly the log's origin")
        peers = wc.get("peers", [])
        want = {vkeys[j - 1] for j in (1, 2, 3) if j != i}
        c.expect({p.get("vkey") for p in peers} == want, where, "peers must be the two others")
        c.expect(wc.get("data_dir") == "/var/lib/sealtrail-witness", where, "data_dir")
    c.expect(len(set(names)) == 3, "init.sh", "witness names must differ")


# --- compose, high availability ---------------------------------------------------------------

HA_DIR = DEPLOY / "compose-ha"
INSTANCE = re.compile(r"sealtrail-\d+$")


def server_routes():
    """The paths the server routes (server/src/api/mod.rs)."""
    text = (ROOT / "server" / "src" / "api" / "mod.rs").read_text(encoding="utf-8")
    return set(re.findall(r'\.route\(\s*"([^"]+)"', text))


def parse_haproxy(c, path):
    """An HAProxy configuration as {(section, name): [line tokens]}, comments dropped."""
    sections, cur = {}, None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            word, _, name = line.strip().partition(" ")
            cur = (word, name.strip())
            c.expect(cur not in sections, rel(path), f"line {n}: section {word} {name} twice")
            sections[cur] = []
        elif c.expect(cur is not None, rel(path), f"line {n}: outside any section"):
            sections[cur].append(line.split())
    return sections


def seconds(value):
    """An HAProxy time ("60s", "500ms", "2m"; a bare number is milliseconds) in seconds."""
    m = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value or "")
    if not m:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, None: 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(m.group(1)) * scale[m.group(2)]


def check_haproxy(c, path, instances, instance_port):
    """haproxy.cfg: one frontend to a backend whose servers are exactly the instances (by their
    compose service names and port), health-checked with GET /readyz, failing over on connection
    errors. Returns the frontend's port (None if not found)."""
    where = rel(path)
    sections = parse_haproxy(c, path)

    def lines(section, *first):
        return [t for t in sections.get(section, []) if t[:len(first)] == list(first)]

    defaults = next((k for k in sections if k[0] == "defaults"), None)
    routes = server_routes()
    port = None
    for (kind, name), body in sections.items():
        if kind != "frontend":
            continue
        backend = next((t[1] for t in body if t[0] == "default_backend" and len(t) > 1), None)
        if backend is None:
            continue
        bw = f"{where} backend {backend}"
        if not c.expect(("backend", backend) in sections, where,
                        f"frontend {name}: no backend {backend}"):
            continue
        binds = [t[1] for t in body if t[0] == "bind" and len(t) > 1]
        c.expect(len(binds) == 1 and re.fullmatch(r"[^:]*:\d+", binds[0]), where,
                 f"frontend {name} must bind one address:port")
        port = int(binds[0].rsplit(":", 1)[1]) if binds else None
        bk = ("backend", backend)
        chk = lines(bk, "option", "httpchk")
        path_ok = bool(chk) and chk[0][2:4] == ["GET", "/readyz"]
        c.expect(path_ok, bw, "needs `option httpchk GET /readyz`")
        c.expect("/readyz" in routes, bw, "the server has no /readyz route")
        c.expect(lines(bk, "http-check", "expect", "status", "200") != [], bw,
                 "needs `http-check expect status 200`")
        c.expect(bool(lines(bk, "option", "redispatch") or lines(defaults, "option", "redispatch")),
                 bw, "needs `option redispatch` (a failed connection goes to another instance)")
        default_server = [w for t in lines(bk, "default-server") for w in t[1:]]
        servers = lines(bk, "server")
        names = [t[1] for t in servers if len(t) > 2]
        c.expect(sorted(names) == sorted(instances), bw,
                 f"servers {names} must be the compose instances {sorted(instances)}")
        for t in servers:
            sw = f"{bw} server {t[1] if len(t) > 1 else '?'}"
            if not c.expect(len(t) > 2, sw, "needs a name and an address"):
                continue
            c.expect(t[2] == f"{t[1]}:{instance_port}", sw,
                     f"address must be {t[1]}:{instance_port} (its service and listen port)")
            c.expect("check" in t[3:] + default_server, sw, "must be health-checked (check)")
            opts = t[3:] + default_server
            for i, w in enumerate(opts[:-1]):
                if w == "resolvers":
                    c.expect(("resolvers", opts[i + 1]) in sections, sw,
                             f"resolvers {opts[i + 1]} is not defined")
        for key in ("server", "client"):
            t = lines(bk, "timeout", key) or lines(defaults, "timeout", key)
            secs = seconds(t[0][2]) if t and len(t[0]) > 2 else None
            c.expect(secs is not None and secs > 30, bw,
                     f"timeout {key} must exceed the server's request timeout (30 s)")
    c.expect(port is not None, where, "no frontend with a default_backend")
    return port


def service_config_path(svc):
    command = [str(x) for x in svc.get("command") or []]
    return command[command.index("--config") + 1] if "--config" in command[:-1] else None


def mount_target(svc, source):
    """Where the service mounts the volume (or bind source) `source`, or None."""
    for vol in svc.get("volumes") or []:
        parts = str(vol).split(":")
        if parts[0] == source and len(parts) > 1:
            return parts[1]
    return None


def check_compose_ha(c, docs):
    """deploy/compose-ha: three identical instances (one image, command, key volume and config,
    read-only) after init and a healthy PostgreSQL, behind HAProxy, with the witnesses of
    deploy/compose. Returns what check_compose_ha_configs compares with (None if missing)."""
    path = HA_DIR / "compose.yaml"
    if not c.expect(path in docs and docs[path], rel(path), "missing"):
        return None
    compose = docs[path][0]
    services = check_compose_services(c, path, compose)
    where = rel(path)
    for want in ("init", "postgres", "lb", "witness1", "witness2", "witness3"):
        c.expect(want in services, where, f"service {want} is missing")
    instances = sorted(n for n in services if INSTANCE.match(n))
    c.expect(len(instances) == 3, where, f"expected three instances sealtrail-N, not {instances}")
    if not instances:
        return None
    first = services[instances[0]]
    for name in instances:
        svc, sw = services[name], f"{where} service {name}"
        for key in ("image", "command", "entrypoint", "volumes", "user", "environment",
                    "depends_on", "read_only"):
            c.expect(svc.get(key) == first.get(key), sw,
                     f"{key} differs from {instances[0]}'s: the instances must be identical")
        c.expect(bool(svc.get("restart")), sw, "needs a restart policy")
        c.expect(all(str(v).endswith(":ro") for v in svc.get("volumes") or []), sw,
                 "the key and config volumes must be mounted read-only")
        c.expect(get(svc, "depends_on", "postgres", "condition") == "service_healthy", sw,
                 "must wait for postgres to be healthy")
        c.expect(get(svc, "depends_on", "init", "condition") == "service_completed_successfully",
                 sw, "must wait for init to complete")
    config_path = service_config_path(first)
    config_dir = str(pathlib.PurePosixPath(config_path or "/").parent)
    config_volume = next((str(v).split(":")[0] for v in first.get("volumes") or []
                          if str(v).split(":")[1:2] == [config_dir]), None)
    c.expect(config_volume is not None, where,
             f"the instances' --config {config_path} must be on a volume")
    for name in ("witness1", "witness2", "witness3", "postgres"):
        dep = get(services, name, "depends_on", "init", "condition")
        c.expect(dep == "service_completed_successfully", f"{where} service {name}",
                 "must wait for init to complete")
    for name, svc in services.items():
        if name != "init":
            c.expect(bool(svc.get("restart")), f"{where} service {name}", "needs a restart policy")

    # PostgreSQL: the official image, a named volume, the password from a secret, health checked,
    # durability settings not turned off.
    pg = services.get("postgres") or {}
    pw = f"{where} service postgres"
    c.expect(str(pg.get("image", "")).startswith("docker.io/library/postgres:16"), pw,
             "image must be the official postgres:16")
    c.expect(mount_target(pg, "postgres-data") == "/var/lib/postgresql/data", pw,
             "needs the named volume postgres-data at /var/lib/postgresql/data")
    env = pg.get("environment") or {}
    c.expect("POSTGRES_PASSWORD" not in env, pw, "the password must come from a secret")
    secret = str(env.get("POSTGRES_PASSWORD_FILE", "")).removeprefix("/run/secrets/")
    c.expect(bool(secret) and secret in (pg.get("secrets") or [])
             and secret in (compose.get("secrets") or {}), pw,
             "POSTGRES_PASSWORD_FILE must be a declared secret under /run/secrets")
    c.expect("pg_isready" in " ".join(map(str, get(pg, "healthcheck", "test") or [])), pw,
             "needs a pg_isready healthcheck (the instances wait for it)")
    command = [str(x) for x in pg.get("command") or []]
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        for opt in command:
            if opt.startswith(f"{setting}="):
                c.expect(opt.split("=", 1)[1] == "on", pw, f"{setting} must stay on")

    # init: both init scripts, the secret, and every volume the instances and witnesses read.
    init = services.get("init") or {}
    iw = f"{where} service init"
    c.expect(mount_target(init, "./init.sh") is not None
             and mount_target(init, "../compose/init.sh") is not None, iw,
             "must mount ./init.sh and ../compose/init.sh (the keys and witnesses)")
    c.expect(secret in (init.get("secrets") or []), iw, f"needs the secret {secret}")
    init_sources = {str(v).split(":")[0] for v in init.get("volumes") or []}
    for name in instances + ["witness1", "witness2", "witness3"]:
        for vol in (services.get(name) or {}).get("volumes") or []:
            src = str(vol).split(":")[0]
            c.expect(src in init_sources, iw, f"does not write the volume {src} that {name} reads")

    # The load balancer and its configuration.
    lb = services.get("lb") or {}
    lw = f"{where} service lb"
    cfg_target = mount_target(lb, "./haproxy.cfg")
    c.expect(cfg_target == "/usr/local/etc/haproxy/haproxy.cfg", lw,
             "must mount ./haproxy.cfg at /usr/local/etc/haproxy/haproxy.cfg")
    c.expect(set(get(lb, "depends_on") or {}) >= set(instances), lw,
             "must depend on the instances")
    instance_port = None
    for p in first.get("ports") or []:
        instance_port = int(str(p).rsplit(":", 1)[1])
    lb_port = check_haproxy(c, HA_DIR / "haproxy.cfg", instances, instance_port)
    published = {int(str(p).rsplit(":", 1)[1]) for p in lb.get("ports") or []}
    c.expect(lb_port in published, lw, f"must publish the frontend's port {lb_port}")
    log_addr = get(init, "environment", "LOG_ADDR")
    c.expect(log_addr == f"lb:{lb_port}", iw,
             f"LOG_ADDR must be lb:{lb_port}: the witnesses reach the log through the LB")
    return {
        "instance_port": instance_port,
        "data_dir": mount_target(first, "log-data"),
        "log_addr": log_addr,
        "db_host": "postgres",
        "db_user": env.get("POSTGRES_USER"),
        "db_name": env.get("POSTGRES_DB"),
    }


def check_compose_ha_configs(c, docs, out_dir):
    """What deploy/compose-ha/init.sh wrote to OUT_DIR/config (the witnesses') and
    OUT_DIR/log-config (the instances'): one config on PostgreSQL that agrees with compose.yaml,
    a submitter token, no per-address limits behind the load balancer."""
    ha = check_compose_ha(Checker(), docs) or {}  # its failures are reported by main()
    d = pathlib.Path(out_dir)
    log_path = d / "log-config" / "sealtrail.toml"
    where = "compose-ha init.sh sealtrail.toml"
    try:
        log = tomllib.loads(log_path.read_text())
        token = (d / "log-config" / "submitter.token").read_text().strip()
    except (OSError, tomllib.TOMLDecodeError) as e:
        c.fail(where, str(e))
        return
    check_compose_configs(c, d / "config", log_path)
    c.expect(not (d / "config" / "sealtrail.toml").exists(), "compose-ha init.sh",
             "the log's config (with the password) must not stay in the witnesses' volume")
    c.expect(log.get("store") == "postgres", where, 'store must be "postgres"')
    url = urllib.parse.urlsplit(get(log, "postgres", "url") or "")
    c.expect(url.scheme in ("postgres", "postgresql") and url.hostname == ha.get("db_host")
             and url.port == 5432 and url.username == ha.get("db_user")
             and url.path == f"/{ha.get('db_name')}" and bool(url.password), where,
             "postgres.url must reach the compose service postgres as its POSTGRES_USER, "
             "POSTGRES_DB, with the password")
    c.expect(log.get("data_dir") == ha.get("data_dir"), where,
             f"data_dir must be where the instances mount the key volume ({ha.get('data_dir')})")
    c.expect(str(log.get("listen", "")).rsplit(":", 1)[-1] == str(ha.get("instance_port")),
             where, "listen must be on the port HAProxy checks and the compose file publishes")
    tokens = get(log, "auth", "tokens") or []
    c.expect(len(tokens) == 1 and tokens[0].get("role") == "submitter"
             and tokens[0].get("sha256") == hashlib.sha256(token.encode()).hexdigest(), where,
             "one submitter token, the SHA-256 of submitter.token")
    limits = log.get("limits") or {}
    for key in ("max_connections_per_ip", "max_inflight_body_bytes_per_ip",
                "max_inflight_response_bytes_per_ip", "ip_rate_per_sec"):
        c.expect(limits.get(key) == 0, where, f"limits.{key} must be 0 behind the load balancer")
    for i in (1, 2, 3):
        try:
            wc = tomllib.loads((d / "config" / f"witness{i}.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue  # reported by check_compose_configs
        urls = [x.get("url") for x in wc.get("logs", [])]
        c.expect(urls == [f"http://{ha.get('log_addr')}"], f"compose-ha init.sh witness{i}.toml",
                 f"the log's url must be http://{ha.get('log_addr')} (the load balancer)")


# --- Grafana and metric names -----------------------------------------------------------------


def dashboard_exprs(c, dash, where):
    exprs = []
    ids = set()
    for panel in dash.get("panels", []):
        pid = panel.get("id")
        c.expect(pid not in ids, where, f"panel id {pid} is used twice")
        ids.add(pid)
        if panel.get("type") == "row":
            continue
        c.expect(get(panel, "datasource", "uid") == "${datasource}", where,
                 f"panel {panel.get('title')!r} must use the datasource variable")
        targets = panel.get("targets") or []
        c.expect(bool(targets), where, f"panel {panel.get('title')!r} has no query")
        for t in targets:
            exprs.append(t.get("expr", ""))
    return exprs


def grafana_to_promql(expr):
    """Substitutes Grafana's variables so promtool can parse the query."""
    return (expr.replace("$__rate_interval", "5m").replace("$log", ".*")
            .replace("$witness", ".*"))


def metric_names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # drop matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {n for n in names if n.startswith("sealtrail_") and n not in PROMQL_WORDS}


def defined_metrics():
    """Metric names defined in the Rust sources: every string literal of the service crates,
    with the crate's registry prefix; and the metrics the backup script writes for the textfile
    collector (its `# TYPE` lines)."""
    out = set()
    for crate, prefix in (("server", "sealtrail_"), ("witness", "sealtrail_witness_")):
        for path in (ROOT / crate / "src").rglob("*.rs"):
            for lit in re.findall(r'"([a-z][a-z0-9_]*)"', path.read_text(encoding="utf-8")):
                out.add(prefix + lit)
    out |= BACKUP_METRICS
    return out


# Written by deploy/backup/sealtrail-backup, not by a service: node_exporter's textfile collector
# exports them.
BACKUP_METRICS = set(re.findall(r"^# TYPE (sealtrail_backup_[a-z_]+) ",
                                (DEPLOY / "backup" / "sealtrail-backup").read_text(encoding="utf-8"),
                                re.M))


def base_name(name):
    return re.sub(r"_(bucket|sum|count)$", "", name)


def check_metrics(c, docs, dashboard_rules):
    used = {}
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    for group in (docs.get(alerts) or [{}])[0].get("groups", []):
        for rule in group.get("rules", []):
            for n in metric_names(rule.get("expr", "")):
                used.setdefault(n, set()).add(rel(alerts))
    dash_path = DEPLOY / "grafana" / "dashboards" / "sealtrail.json"
    dash = (docs.get(dash_path) or [{}])[0]
    c.expect(dash.get("uid") == "sealtrail", rel(dash_path), "uid must be sealtrail")
    exprs = dashboard_exprs(c, dash, rel(dash_path))
    for e in exprs:
        for n in metric_names(e):
            used.setdefault(n, set()).add(rel(dash_path))
    if dashboard_rules:
        rules = [{"record": f"dashboard:query{i}", "expr": grafana_to_promql(e)}
                 for i, e in enumerate(exprs)]
        pathlib.Path(dashboard_rules).write_text(
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    defined = defined_metrics()
    for name, where in sorted(used.items()):
        if base_name(name) in defined:
            if base_name(name) in PENDING_METRICS:
                c.warn("deploy/check.py", f"{base_name(name)} is defined now: remove it from "
                       "PENDING_METRICS")
        elif base_name(name) in PENDING_METRICS:
            c.warn(", ".join(sorted(where)),
                   f"{name} is not defined yet ({PENDING_METRICS[base_name(name)]})")
        else:
            c.fail(", ".join(sorted(where)), f"{name} is not a metric the sources define")


# Metrics a running setup without errors, forwarding sinks or authentication does not show yet.
NOT_IN_A_QUIET_SETUP = {
    "sealtrail_errors_total": "appears with the first error",
}


def check_live_metrics(c, docs, files):
    """Every metric the alerts and the dashboard use is exported by the running services (the
    Prometheus text expositions in FILES), unless NOT_IN_A_QUIET_SETUP or PENDING explains it."""
    live = set()
    for f in files:
        for line in pathlib.Path(f).read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                live.add(base_name(re.split(r"[{ ]", line, maxsplit=1)[0]))
    used = set()
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    for group in (docs.get(alerts) or [{}])[0].get("groups", []):
        for rule in group.get("rules", []):
            used |= metric_names(rule.get("expr", ""))
    dash = (docs.get(DEPLOY / "grafana" / "dashboards" / "sealtrail.json") or [{}])[0]
    for panel in dash.get("panels", []):
        for t in panel.get("targets") or []:
            used |= metric_names(t.get("expr", ""))
    for name in sorted({base_name(n) for n in used}):
        if name in live:
            continue
        if name in BACKUP_METRICS:
            continue  # the backup script's, not a service's
        why = NOT_IN_A_QUIET_SETUP.get(name) or PENDING_METRICS.get(name)
        if why:
            c.warn("live /metrics", f"{name} not exported ({why})")
        else:
            c.fail("live /metrics", f"{name} is used by alerts or dashboard but not exported")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-dashboard-rules", metavar="FILE",
                    help="write the dashboard's queries as recording rules to FILE")
    ap.add_argument("--compose-configs", metavar="DIR",
                    help="also check the configs deploy/compose/init.sh wrote to DIR")
    ap.add_argument("--compose-ha-configs", metavar="DIR",
                    help="also check the configs deploy/compose-ha/init.sh wrote to DIR/config "
                    "and DIR/log-config")
    ap.add_argument("--live-metrics", metavar="FILE", nargs="+",
                    help="also check the metric names against these /metrics expositions")
    args = ap.parse_args()
    c = Checker()
    docs = parse_all(c)
    check_kubernetes(c, docs)
    check_compose(c, docs)
    check_compose_ha(c, docs)
    check_dockerfile(c)
    check_metrics(c, docs, args.write_dashboard_rules)
    if args.compose_configs:
        check_compose_configs(c, args.compose_configs)
    if args.compose_ha_configs:
        check_compose_ha_configs(c, docs, args.compose_ha_configs)
    if args.live_metrics:
        check_live_metrics(c, docs, args.live_metrics)
    for w in c.warnings:
        print(f"warning: {w}")
    for f in c.failures:
        print(f"FAILED: {f}")
    print(f"deploy/check.py: {len(docs)} files parsed, {len(c.failures)} failures, "
          f"{len(c.warnings)} warnings")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
