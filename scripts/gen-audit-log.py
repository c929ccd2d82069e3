#!/usr/bin/env python3
"""Generate a large, realistic Kubernetes audit log (audit.k8s.io/v1 JSON lines) for benchmarks.

    scripts/gen-audit-log.py OUT_PATH SIZE_MB [--seed N] [--attack] [--rate EVENTS_PER_S]

OUT_PATH may be '-' for stdout. SIZE_MB is in MiB (1 MiB = 1,048,576 bytes); the file stops at
the first event boundary at or past that size.

The traffic is a busy Kubeflow cluster on AKS (kube-apiserver v1.20.7), by event count roughly:
70% get/list/watch by kubelets, controllers, Prometheus and health probes (level Metadata, no
objects), 15% lease renewals, 10% kubelet pods/status and nodes/status patches (level Request,
the strategic-merge patch as requestObject), 5% writes at level RequestResponse with full
requestObject/responseObject (controller-created Pods, Deployment/ConfigMap/Notebook/Workflow
updates, endpoints, a rare scheduled Workflow), writes by non-kube-system principals preceded by
their RequestReceived event. All of it is benign: no miner, no exec, no anonymous success, no
workload-creation burst by a non-controller principal, no door opened.

With --attack the attack events of tests/fixtures/audit/kubeflow-campaign.jsonl (every event
whose auditID is in tests/fixtures/audit/expected.json, RequestReceived/ResponseStarted twins
included, 32 lines) are embedded with their original auditIDs and re-timed: the door (Service
patch and the three auth deletions) starts at about 45% of the file, the day-2 attack (six
Deployments, the Workflow, the Notebook patch, two execs, the ClusterRoleBinding) at about 55%
(and after the door). Each request keeps its own durations (an exec's ResponseComplete stays 91 s
after it started) and gaps of up to 5 s between requests (the burst's 1-2 s spacing) are kept;
longer gaps are shortened to 5 s. Every timestamp inside a line (creationTimestamp, managedFields
times too) moves by its request's delta. In a small file (under ~1 min of log time) the tail of
the attack, e.g. the first exec's ResponseComplete, ends up as the last lines.

The generated traffic follows a heavier audit policy than tests/fixtures/audit/audit-policy.yaml:
controller-created Pods are logged at RequestResponse (full request and response objects) to
give the parser more work.

stderr gets: events and lines written, bytes, seconds, MB/s, and the line numbers (1-based)
holding attack events with their auditID and step.

Speed: every event kind is pre-rendered once (several variants each) into a %-format string
whose only slots are the auditID, resourceVersion and the two timestamps; the hot loop does one
'%' per event and writes ~8 MiB chunks. Python 3 standard library only.
"""

import argparse
import heapq
import datetime as dt
import json
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_DIR = os.path.join(HERE, "..", "tests", "fixtures", "audit")

MIB = 1 << 20
K8S = "v1.20.7 (linux/amd64) kubernetes/132a687"
CP_IP = "172.31.11.4"
EPOCH = dt.datetime(1970, 1, 1)


# --------------------------------------------------------------------------- JSON like Go
def go_json(obj):
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def sort_keys(o):
    if isinstance(o, dict):
        return {k: sort_keys(o[k]) for k in sorted(o)}
    if isinstance(o, list):
        return [sort_keys(x) for x in o]
    return o


# Sentinels replaced by format slots after serialisation.
S_AID, S_RV, S_RV2, S_RR, S_ST, S_RRS = "@@AID@@", "@@RV@@", "@@RV2@@", "@@RR@@", "@@ST@@", "@@RRS@@"
SLOT_FMT = {"AID": "%08x-%04x-4%03x-%04x-%012x", "RV": "%d", "RV2": "%d", "RR": "%s.%06dZ", "ST": "%s.%06dZ",
            "RRS": "%s.%06dZ"}
SENTINEL_RE = re.compile(r"@@(AID|RV2|RV|RRS|RR|ST)@@")


class Template:
    """One pre-rendered event kind (one or two lines) as a %-format string and its slot order."""
    __slots__ = ("fmt", "slots", "lines", "lat_ms", "weight", "name")

    def __init__(self, name, lines, weight, lat_ms):
        text = "\n".join(go_json(e) for e in lines) + "\n"
        text = text.replace("%", "%%")
        self.slots = tuple(SENTINEL_RE.findall(text))
        self.fmt = SENTINEL_RE.sub(lambda m: SLOT_FMT[m.group(1)], text)
        self.lines = len(lines)
        self.lat_ms = lat_ms
        self.weight = weight
        self.name = name


# --------------------------------------------------------------------------- the cluster
class Cluster:
    def __init__(self, rng):
        self.rng = rng
        self.nodes = ["aks-nodepool1-31718369-vmss%06d" % i for i in range(24)] + \
                     ["aks-gpupool1-31718369-vmss%06d" % i for i in range(4)]
        self.node_ip = {n: "10.240.0.%d" % (4 + i) for i, n in enumerate(self.nodes)}
        self.profiles = ["kubeflow-user-example-com"] + ["kubeflow-user-team-%s" % c for c in
                                                           "abcdefghijklmnopqrs"]
        self.namespaces = ["kube-system", "kubeflow", "istio-system", "monitoring", "cert-manager",
                           "knative-serving", "default"] + self.profiles
        self.sa_uid = {}

    def uuid(self):
        r = self.rng.getrandbits(128)
        h = "%032x" % r
        return "%s-%s-4%s-%x%s-%s" % (h[:8], h[8:12], h[13:16], 8 + (r >> 62 & 3), h[17:20], h[20:32])

    def sa(self, ns, name):
        key = (ns, name)
        if key not in self.sa_uid:
            self.sa_uid[key] = self.uuid()
        return {"username": "system:serviceaccount:%s:%s" % key, "uid": self.sa_uid[key],
                "groups": ["system:serviceaccounts", "system:serviceaccounts:%s" % ns, "system:authenticated"]}

    def suffix(self, n):
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def ev(level, uri, verb, user, ip, ua, ref=None, status=None, req=None, resp=None, reason="",
       decision="allow", stage="ResponseComplete", annotations=None):
    e = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": S_AID, "stage": stage,
         "requestURI": uri, "verb": verb, "user": user}
    if ip:
        e["sourceIPs"] = [ip]
    if ua:
        e["userAgent"] = ua
    if ref:
        e["objectRef"] = ref
    if stage != "RequestReceived":
        e["responseStatus"] = status or {"metadata": {}, "code": 200}
    if req is not None:
        e["requestObject"] = req
    if resp is not None:
        e["responseObject"] = resp
    e["requestReceivedTimestamp"] = S_RR
    e["stageTimestamp"] = S_ST if stage != "RequestReceived" else S_RRS
    if stage != "RequestReceived":
        ann = {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason}
        ann.update(annotations or {})
        e["annotations"] = dict(sorted(ann.items()))
    return e


def with_received(e):
    """The RequestReceived twin (same auditID) followed by the event."""
    rr = {k: v for k, v in e.items() if k not in ("responseStatus", "requestObject", "responseObject",
                                                  "annotations")}
    rr["stage"] = "RequestReceived"
    rr["stageTimestamp"] = S_RRS
    if "objectRef" in rr:
        ref = {k: v for k, v in rr["objectRef"].items() if k not in ("uid", "resourceVersion")}
        if e["verb"] == "create" and "subresource" not in ref:
            ref.pop("name", None)
        rr["objectRef"] = ref
    order = ["kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "sourceIPs",
             "userAgent", "objectRef", "requestReceivedTimestamp", "stageTimestamp"]
    return [{k: rr[k] for k in order if k in rr}, e]


def ref(resource, ns=None, name=None, uid=None, group=None, version="v1", rv=None, sub=None):
    r = {"resource": resource}
    if ns:
        r["namespace"] = ns
    if name:
        r["name"] = name
    if uid:
        r["uid"] = uid
    if group:
        r["apiGroup"] = group
    r["apiVersion"] = version
    if rv:
        r["resourceVersion"] = rv
    if sub:
        r["subresource"] = sub
    return r


def rbac(binding, role, kind, name):
    return 'RBAC: allowed by ClusterRoleBinding "%s" of ClusterRole "%s" to %s "%s"' % (binding, role, kind, name)


def ctl(sa):
    return rbac("system:controller:" + sa, "system:controller:" + sa, "ServiceAccount", sa + "/kube-system")


def kc_ua(sa):
    return "kube-controller-manager/%s/system:serviceaccount:kube-system:%s" % (K8S, sa)


U_KCM = {"username": "system:kube-controller-manager", "groups": ["system:authenticated"]}
U_SCHED = {"username": "system:kube-scheduler", "groups": ["system:authenticated"]}
U_ANON = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
R_KCM = rbac("system:kube-controller-manager", "system:kube-controller-manager", "User",
             "system:kube-controller-manager")
R_SCHED = rbac("system:kube-scheduler", "system:kube-scheduler", "User", "system:kube-scheduler")
R_PUBLIC = rbac("system:public-info-viewer", "system:public-info-viewer", "Group", "system:unauthenticated")
CR_UA = "manager/v0.0.0 (linux/amd64) kubernetes/$Format"

BENIGN_IMAGES = [
    ("tensorflow/tensorflow:2.4.1", ["python", "/opt/model/train.py", "--epochs=10"]),
    ("pytorch/pytorch:1.8.1-cuda11.1-cudnn8-runtime", ["python", "-m", "torch.distributed.launch", "train.py"]),
    ("public.ecr.aws/j1r0q0g6/notebooks/notebook-servers/jupyter-scipy:v1.3.0", None),
    ("nginx:1.21.0", None),
    ("python:3.8-slim", ["python", "-u", "serve.py", "--port=8080"]),
    ("gcr.io/ml-pipeline/frontend:1.5.0", None),
    ("redis:6.2.3", ["redis-server", "--appendonly", "yes"]),
]


def container(name, image, command=None, args=None, resources=None):
    c = {"name": name, "image": image}
    if command:
        c["command"] = command
    if args:
        c["args"] = args
    c["resources"] = resources or {}
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    c["imagePullPolicy"] = "IfNotPresent"
    return c


def pod_spec(containers, pod=False, node=None):
    s = {"containers": containers, "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
         "dnsPolicy": "ClusterFirst"}
    if node:
        s["nodeName"] = node
    s["securityContext"] = {}
    s["schedulerName"] = "default-scheduler"
    if pod:
        s["enableServiceLinks"] = True
    return s


def build_templates(c, variants):
    rng = c.rng
    T = []

    def add(name, weight, lat, make):
        w = weight / variants
        for _ in range(variants):
            T.append(Template(name, make(), w, lat))

    node = lambda: rng.choice(c.nodes)
    prof = lambda: rng.choice(c.profiles)
    nsp = lambda: rng.choice(c.namespaces)

    # ---------------- reads: ~70%
    def kubelet_get_node():
        n = node()
        return [ev("Metadata", "/api/v1/nodes/%s?resourceVersion=0&timeout=10s" % n, "get",
                   {"username": "system:node:" + n, "groups": ["system:nodes", "system:authenticated"]},
                   c.node_ip[n], "kubelet/" + K8S, ref("nodes", name=n))]
    add("kubelet-get-node", 9, (1, 3), kubelet_get_node)

    def kubelet_get_cm():
        n, ns = node(), nsp()
        kind = rng.choice(["configmaps", "secrets"])
        name = rng.choice(["kube-root-ca.crt", "istio-ca-root-cert", "default-editor-token-" + c.suffix(5),
                           "pipeline-install-config", "istio-sidecar-injector"])
        return [ev("Metadata", "/api/v1/namespaces/%s/%s/%s" % (ns, kind, name), "get",
                   {"username": "system:node:" + n, "groups": ["system:nodes", "system:authenticated"]},
                   c.node_ip[n], "kubelet/" + K8S, ref(kind, ns, name))]
    add("kubelet-get-configmap-secret", 9, (1, 3), kubelet_get_cm)

    def ctl_list():
        sa = rng.choice(["replicaset-controller", "endpoint-controller", "daemon-set-controller",
                         "job-controller", "namespace-controller", "generic-garbage-collector"])
        res = rng.choice(["pods", "endpoints", "replicasets", "jobs", "services"])
        grp = {"replicasets": "apps", "jobs": "batch"}.get(res)
        path = "/apis/%s/v1/%s" % (grp, res) if grp else "/api/v1/%s" % res
        return [ev("Metadata", path + "?limit=500&resourceVersion=0", "list", c.sa("kube-system", sa), CP_IP,
                   kc_ua(sa), ref(res, group=grp), reason=ctl(sa))]
    add("controller-list", 6, (3, 30), ctl_list)

    def kcm_get_sa():
        sa = rng.choice(["replicaset-controller", "deployment-controller", "statefulset-controller",
                         "job-controller", "endpointslice-controller"])
        return [ev("Metadata", "/api/v1/namespaces/kube-system/serviceaccounts/" + sa, "get", U_KCM, CP_IP,
                   "kube-controller-manager/" + K8S, ref("serviceaccounts", "kube-system", sa), reason=R_KCM)]
    add("kcm-get-serviceaccount", 6, (1, 3), kcm_get_sa)

    def nbc_list():
        ns = prof()
        u = c.sa("kubeflow", "notebook-controller-service-account")
        return [ev("Metadata", "/apis/kubeflow.org/v1/namespaces/%s/notebooks?limit=500&resourceVersion=0" % ns,
                   "list", u, "10.244.0.15", CR_UA, ref("notebooks", ns, group="kubeflow.org"),
                   reason=rbac("notebook-controller-role-binding", "notebook-controller-role", "ServiceAccount",
                               "notebook-controller-service-account/kubeflow"))]
    add("notebook-controller-list", 5, (2, 8), nbc_list)

    def persist_list():
        return [ev("Metadata", "/apis/argoproj.io/v1alpha1/workflows?limit=500&resourceVersion=0", "list",
                   c.sa("kubeflow", "ml-pipeline-persistenceagent"), "10.244.2.36",
                   "persistence_agent/v0.0.0 (linux/amd64) kubernetes/$Format",
                   ref("workflows", group="argoproj.io", version="v1alpha1"),
                   reason=rbac("ml-pipeline-persistenceagent-role-binding", "ml-pipeline-persistenceagent-role",
                               "ServiceAccount", "ml-pipeline-persistenceagent/kubeflow"))]
    add("persistenceagent-list", 4, (4, 20), persist_list)

    def watch():
        who = rng.choice([("kubelet", None), ("kube-proxy", None), ("scheduler", None), ("nbc", None)])[0]
        rv = str(rng.randint(4_000_000, 9_000_000))
        to = rng.randint(300, 600)
        q = "?allowWatchBookmarks=true&resourceVersion=%s&timeout=%dm%ds&timeoutSeconds=%d&watch=true" % (
            rv, to // 60, to % 60, to)
        if who == "kubelet":
            n = node()
            return [ev("Metadata", "/api/v1/services" + q, "watch",
                       {"username": "system:node:" + n, "groups": ["system:nodes", "system:authenticated"]},
                       c.node_ip[n], "kubelet/" + K8S, ref("services"))]
        if who == "kube-proxy":
            n = node()
            return [ev("Metadata", "/apis/discovery.k8s.io/v1beta1/endpointslices" + q, "watch",
                       {"username": "system:serviceaccount:kube-system:kube-proxy",
                        "uid": c.sa("kube-system", "kube-proxy")["uid"],
                        "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                   "system:authenticated"]},
                       c.node_ip[n], "kube-proxy/" + K8S, ref("endpointslices", group="discovery.k8s.io",
                                                              version="v1beta1"),
                       reason=rbac("system:node-proxier", "system:node-proxier", "ServiceAccount",
                                   "kube-proxy/kube-system"))]
        if who == "scheduler":
            return [ev("Metadata", "/api/v1/pods" + q, "watch", U_SCHED, CP_IP, "kube-scheduler/" + K8S,
                       ref("pods"), reason=R_SCHED)]
        return [ev("Metadata", "/apis/kubeflow.org/v1/notebooks" + q, "watch",
                   c.sa("kubeflow", "notebook-controller-service-account"), "10.244.0.15", CR_UA,
                   ref("notebooks", group="kubeflow.org"))]
    add("watch", 10, (300000, 600000), watch)

    def prom():
        return [ev("Metadata", "/metrics", "get", c.sa("monitoring", "prometheus-k8s"), "10.244.2.8",
                   "Prometheus/2.22.1", None,
                   reason=rbac("prometheus-k8s", "prometheus-k8s", "ServiceAccount", "prometheus-k8s/monitoring"))]
    add("prometheus-metrics", 5, (20, 80), prom)

    def health():
        p = rng.choice(["/healthz", "/livez", "/readyz", "/version", "/readyz?verbose", "/livez?exclude=etcd"])
        return [ev("Metadata", p, "get", U_ANON, "172.31.11.1", "Go-http-client/1.1", reason=R_PUBLIC)]
    add("anonymous-health", 5, (0.3, 1.5), health)

    def discovery():
        p = rng.choice(["/api?timeout=32s", "/apis?timeout=32s", "/apis/apps/v1?timeout=32s",
                        "/apis/kubeflow.org/v1?timeout=32s", "/openapi/v2?timeout=32s"])
        u = c.sa("argocd", "argocd-application-controller")
        return [ev("Metadata", p, "get", u, "10.244.3.14", "argocd-application-controller/v0.0.0 (linux/amd64) "
                   "kubernetes/$Format", reason=rbac("argocd-application-controller", "argocd-application-controller",
                                                      "ServiceAccount", "argocd-application-controller/argocd"))]
    add("discovery", 5, (1, 6), discovery)

    def argocd_get():
        ns = prof()
        name = rng.choice(["model-server", "feature-store", "tensorboard", "label-studio"])
        u = c.sa("argocd", "argocd-application-controller")
        return [ev("Metadata", "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, name), "get", u, "10.244.3.14",
                   "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
                   ref("deployments", ns, name, group="apps"),
                   reason=rbac("argocd-application-controller", "argocd-application-controller", "ServiceAccount",
                               "argocd-application-controller/argocd"))]
    add("argocd-get", 6, (1, 4), argocd_get)

    # ---------------- leases: ~15%
    def lease_cp():
        comp = rng.choice(["kube-controller-manager", "kube-scheduler"])
        u, r = (U_KCM, R_KCM) if comp == "kube-controller-manager" else (U_SCHED, R_SCHED)
        return [ev("Metadata", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/%s?timeout=10s" % comp,
                   "update", u, CP_IP, "%s/%s/leader-election" % (comp, K8S),
                   ref("leases", "kube-system", comp, c.uuid(), "coordination.k8s.io", "v1", S_RV), reason=r)]
    add("lease-control-plane", 4, (2, 6), lease_cp)

    def lease_node():
        n = node()
        return [ev("Metadata", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/%s?timeout=10s" % n,
                   "update", {"username": "system:node:" + n, "groups": ["system:nodes", "system:authenticated"]},
                   c.node_ip[n], "kubelet/" + K8S,
                   ref("leases", "kube-node-lease", n, c.uuid(), "coordination.k8s.io", "v1", S_RV))]
    add("lease-node", 9, (2, 5), lease_node)

    def lease_kf():
        who, name = rng.choice([("notebook-controller-service-account", "kubeflow-notebook-controller"),
                                ("profiles-controller-service-account", "kubeflow-profile-controller"),
                                ("tf-job-operator", "tf-operator")])
        return [ev("Metadata", "/apis/coordination.k8s.io/v1/namespaces/kubeflow/leases/" + name, "update",
                   c.sa("kubeflow", who), "10.244.0.%d" % rng.randint(10, 40), CR_UA,
                   ref("leases", "kubeflow", name, c.uuid(), "coordination.k8s.io", "v1", S_RV),
                   reason='RBAC: allowed by RoleBinding "leader-election-rolebinding/kubeflow" of Role '
                          '"leader-election-role" to ServiceAccount "%s/kubeflow"' % who)]
    add("lease-kubeflow", 2, (2, 6), lease_kf)

    # ---------------- status patches: ~10%
    def pod_status():
        n, ns = node(), prof()
        name = "%s-%s-%s" % (rng.choice(["model-server", "tensorboard", "ml-pipeline-ui-artifact",
                                         "ml-pipeline-visualizationserver"]), c.suffix(10), c.suffix(5))
        ip = "10.244.%d.%d" % (rng.randint(0, 30), rng.randint(2, 250))
        patch = {"metadata": {"uid": c.uuid()},
                 "status": {"$setElementOrder/conditions": [{"type": t} for t in
                                                            ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                            "conditions": [{"lastProbeTime": None, "lastTransitionTime": "@@ST_S@@", "status": "True",
                                            "type": "Ready"}],
                            "containerStatuses": [{"containerID": "containerd://%064x" % rng.getrandbits(256),
                                                   "image": "docker.io/library/python:3.8-slim",
                                                   "imageID": "docker.io/library/python@sha256:%064x" % rng.getrandbits(256),
                                                   "lastState": {}, "name": "main", "ready": True, "restartCount": 0,
                                                   "started": True, "state": {"running": {"startedAt": "2021-06-08T01:12:09Z"}}}],
                            "podIP": ip, "podIPs": [{"ip": ip}]}}
        e = ev("Request", "/api/v1/namespaces/%s/pods/%s/status" % (ns, name), "patch",
               {"username": "system:node:" + n, "groups": ["system:nodes", "system:authenticated"]}, c.node_ip[n],
               "kubelet/" + K8S, ref("pods", ns, name, sub="status"), req=patch)
        return [e]
    add("kubelet-patch-pod-status", 7, (4, 9), pod_status)

    def node_status():
        n = node()
        patch = {"status": {"$setElementOrder/conditions": [{"type": t} for t in (
            "NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure", "Ready")],
            "conditions": [{"lastHeartbeatTime": "@@ST_S@@", "type": t}
                           for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")]}}
        return [ev("Request", "/api/v1/nodes/%s/status?timeout=10s" % n, "patch",
                   {"username": "system:node:" + n, "groups": ["system:nodes", "system:authenticated"]},
                   c.node_ip[n], "kubelet/" + K8S, ref("nodes", name=n, sub="status"), req=patch)]
    add("kubelet-patch-node-status", 3, (5, 10), node_status)

    # ---------------- writes: ~5%
    def rs_pod():
        ns = prof()
        app = rng.choice(["model-server", "tensorboard", "feature-store", "label-studio"])
        image, cmd = rng.choice(BENIGN_IMAGES)
        rs = "%s-%s" % (app, c.suffix(10))
        labels = {"app": app, "pod-template-hash": rs.rsplit("-", 1)[1]}
        owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": c.uuid(), "controller": True,
                  "blockOwnerDeletion": True}]
        spec = pod_spec([container(app, image, cmd, resources={"requests": {"cpu": "500m", "memory": "1Gi"}})],
                        pod=True)
        req = {"kind": "Pod", "apiVersion": "v1",
               "metadata": {"generateName": rs + "-", "namespace": ns, "creationTimestamp": None, "labels": labels,
                            "ownerReferences": owner}, "spec": spec, "status": {}}
        name = rs + "-" + c.suffix(5)
        sa_vol = "default-token-" + c.suffix(5)
        rspec = json.loads(json.dumps(spec))
        rspec["volumes"] = [{"name": sa_vol, "secret": {"secretName": sa_vol, "defaultMode": 420}}]
        rspec["containers"][0]["volumeMounts"] = [{"name": sa_vol, "readOnly": True,
                                                   "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
        rspec["serviceAccountName"] = "default"
        rspec["serviceAccount"] = "default"
        rspec["tolerations"] = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                 "tolerationSeconds": 300},
                                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                                 "tolerationSeconds": 300}]
        rspec["priority"] = 0
        rspec["preemptionPolicy"] = "PreemptLowerPriority"
        resp = {"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": name, "generateName": rs + "-", "namespace": ns, "uid": c.uuid(),
                             "resourceVersion": S_RV, "creationTimestamp": "@@ST_S@@", "labels": labels,
                             "ownerReferences": owner},
                "spec": {k: rspec[k] for k in ("volumes", "containers", "restartPolicy", "terminationGracePeriodSeconds",
                                               "dnsPolicy", "serviceAccountName", "serviceAccount", "securityContext",
                                               "schedulerName", "tolerations", "priority", "enableServiceLinks",
                                               "preemptionPolicy")},
                "status": {"phase": "Pending", "qosClass": "Burstable"}}
        return [ev("RequestResponse", "/api/v1/namespaces/%s/pods" % ns, "create", c.sa("kube-system", "replicaset-controller"),
                   CP_IP, kc_ua("replicaset-controller"), ref("pods", ns), status={"metadata": {}, "code": 201},
                   req=req, resp=resp, reason=ctl("replicaset-controller"))]
    add("replicaset-controller-create-pod", 1.0, (15, 60), rs_pod)

    def endpoints():
        ns = prof()
        name = rng.choice(["model-server", "tensorboard", "feature-store"])
        ips = ["10.244.%d.%d" % (rng.randint(0, 30), rng.randint(2, 250)) for _ in range(rng.randint(1, 3))]
        obj = {"kind": "Endpoints", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": ns, "uid": c.uuid(), "resourceVersion": S_RV,
                            "creationTimestamp": "2021-05-30T11:02:41Z", "labels": {"app": name}},
               "subsets": [{"addresses": [{"ip": ip, "nodeName": node(),
                                           "targetRef": {"kind": "Pod", "namespace": ns, "name": "%s-%s" % (name, c.suffix(5))}}
                                          for ip in ips],
                            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}
        return [ev("Request", "/api/v1/namespaces/%s/endpoints/%s" % (ns, name), "update",
                   c.sa("kube-system", "endpoint-controller"), CP_IP, kc_ua("endpoint-controller"),
                   ref("endpoints", ns, name, obj["metadata"]["uid"], rv=S_RV), req=obj, reason=ctl("endpoint-controller"))]
    add("endpoint-controller-update", 0.8, (4, 10), endpoints)

    def deploy_update():
        ns = prof()
        app = rng.choice(["model-server", "feature-store", "tensorboard", "label-studio"])
        image, cmd = rng.choice(BENIGN_IMAGES)
        labels = {"app": app, "app.kubernetes.io/instance": app + "-" + ns}
        tpl = pod_spec([container(app, image, cmd, resources={"requests": {"cpu": "500m", "memory": "1Gi"}})])
        uid = c.uuid()
        body = {"kind": "Deployment", "apiVersion": "apps/v1",
                "metadata": {"name": app, "namespace": ns, "uid": uid, "resourceVersion": S_RV,
                             "generation": rng.randint(2, 40), "creationTimestamp": "2021-05-30T11:02:41Z",
                             "labels": labels,
                             "annotations": {"deployment.kubernetes.io/revision": str(rng.randint(2, 30))}},
                "spec": {"replicas": rng.randint(1, 3), "selector": {"matchLabels": {"app": app}},
                         "template": {"metadata": {"creationTimestamp": None, "labels": {"app": app}}, "spec": tpl},
                         "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                                 "maxSurge": "25%"}},
                         "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
                "status": {}}
        resp = json.loads(json.dumps(body))
        resp["metadata"]["resourceVersion"] = S_RV2
        u = c.sa("argocd", "argocd-application-controller")
        e = ev("RequestResponse", "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, app), "update", u, "10.244.3.14",
               "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
               ref("deployments", ns, app, uid, "apps", "v1", S_RV), req=body, resp=resp,
               reason=rbac("argocd-application-controller", "argocd-application-controller", "ServiceAccount",
                           "argocd-application-controller/argocd"))
        return with_received(e)
    add("argocd-update-deployment", 0.6, (8, 20), deploy_update)

    def cm_update():
        ns = rng.choice(["kubeflow"] + c.profiles[:6])
        name = rng.choice(["pipeline-install-config", "inferenceservice-config", "katib-config", "feature-flags"])
        data = {"config.yaml": "logLevel: info\nmetrics:\n  enabled: true\nretention: %dd\n" % rng.randint(1, 30),
                "appName": name}
        body = {"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": name, "namespace": ns, "uid": c.uuid(), "resourceVersion": S_RV,
                             "creationTimestamp": "2021-05-21T09:05:13Z", "labels": {"app.kubernetes.io/part-of": "kubeflow"}},
                "data": data}
        resp = json.loads(json.dumps(body))
        resp["metadata"]["resourceVersion"] = S_RV2
        u = c.sa("argocd", "argocd-application-controller")
        e = ev("RequestResponse", "/api/v1/namespaces/%s/configmaps/%s" % (ns, name), "update", u, "10.244.3.14",
               "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
               ref("configmaps", ns, name, body["metadata"]["uid"], rv=S_RV), req=body, resp=resp,
               reason=rbac("argocd-application-controller", "argocd-application-controller", "ServiceAccount",
                           "argocd-application-controller/argocd"))
        return with_received(e)
    add("argocd-update-configmap", 0.8, (6, 14), cm_update)

    def nb_status():
        ns = prof()
        name = rng.choice(["scipy", "tf-cpu", "pytorch-gpu", "eda"]) + "-" + c.suffix(4)
        image = "public.ecr.aws/j1r0q0g6/notebooks/notebook-servers/jupyter-%s:v1.3.0" % rng.choice(
            ["scipy", "tensorflow-full", "pytorch-full"])
        uid = c.uuid()
        obj = sort_keys({"apiVersion": "kubeflow.org/v1", "kind": "Notebook",
                         "metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": S_RV,
                                      "generation": 1, "creationTimestamp": "2021-06-01T08:44:10Z",
                                      "labels": {"app": name},
                                      "annotations": {"notebooks.kubeflow.org/server-type": "jupyter",
                                                      "notebooks.kubeflow.org/creator": ns.replace("kubeflow-user-", "") + "@example.com"}},
                         "spec": {"template": {"spec": {"containers": [
                             {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                              "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                              "volumeMounts": [{"mountPath": "/home/jovyan", "name": "workspace-" + name}]}],
                             "serviceAccountName": "default-editor",
                             "volumes": [{"name": "workspace-" + name,
                                          "persistentVolumeClaim": {"claimName": "workspace-" + name}}]}}},
                         "status": {"conditions": [], "containerState": {"running": {"startedAt": "2021-06-07T08:44:31Z"}},
                                    "readyReplicas": 1}})
        resp = json.loads(json.dumps(obj))
        resp["metadata"]["resourceVersion"] = S_RV2
        e = ev("RequestResponse", "/apis/kubeflow.org/v1/namespaces/%s/notebooks/%s/status" % (ns, name), "update",
               c.sa("kubeflow", "notebook-controller-service-account"), "10.244.0.15", CR_UA,
               ref("notebooks", ns, name, uid, "kubeflow.org", "v1", S_RV, "status"), req=obj, resp=resp,
               reason=rbac("notebook-controller-role-binding", "notebook-controller-role", "ServiceAccount",
                           "notebook-controller-service-account/kubeflow"))
        return with_received(e)
    add("notebook-controller-update-status", 0.6, (6, 12), nb_status)

    def wf_obj(ns, name, uid, phase):
        return sort_keys({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "generateName": name.rsplit("-", 1)[0] + "-", "namespace": ns, "uid": uid,
                         "resourceVersion": S_RV, "generation": 3, "creationTimestamp": "@@ST_S@@",
                         "labels": {"pipelines.kubeflow.org/kfp_sdk_version": "1.6.0",
                                    "workflows.argoproj.io/completed": "false", "workflows.argoproj.io/phase": phase}},
            "spec": {"arguments": {"parameters": [{"name": "epochs", "value": "5"}]}, "entrypoint": "train",
                     "serviceAccountName": "default-editor",
                     "templates": [{"dag": {"tasks": [{"name": "fetch", "template": "fetch"},
                                                      {"dependencies": ["fetch"], "name": "fit", "template": "fit"}]},
                                    "name": "train"},
                                   {"container": {"args": ["-sSfL", "-o", "/data/mnist.npz",
                                                           "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"],
                                                  "command": ["curl"], "image": "curlimages/curl:7.76.1"},
                                    "name": "fetch"},
                                   {"container": {"args": ["--epochs", "{{workflow.parameters.epochs}}"],
                                                  "command": ["python3", "/opt/model/train.py"],
                                                  "image": "tensorflow/tensorflow:2.4.1"},
                                    "name": "fit"}]},
            "status": {"phase": phase, "startedAt": "@@ST_S@@", "finishedAt": None}})

    def wf_update():
        ns = prof()
        name = "%s-%s" % (rng.choice(["mnist-pipeline", "nightly-etl", "xgboost-train"]), c.suffix(5))
        uid = c.uuid()
        req = wf_obj(ns, name, uid, "Running")
        resp = json.loads(json.dumps(req))
        resp["metadata"]["resourceVersion"] = S_RV2
        e = ev("RequestResponse", "/apis/argoproj.io/v1alpha1/namespaces/%s/workflows/%s" % (ns, name), "update",
               c.sa("kubeflow", "argo"), "10.244.1.12", "workflow-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
               ref("workflows", ns, name, uid, "argoproj.io", "v1alpha1", S_RV), req=req, resp=resp,
               reason=rbac("argo-binding", "argo", "ServiceAccount", "argo/kubeflow"))
        return with_received(e)
    add("argo-update-workflow", 0.7, (8, 16), wf_update)

    def wf_create():
        # rare, always the same namespace: never a cross-namespace burst
        ns = "kubeflow-user-team-c"
        name = "nightly-etl-" + c.suffix(5)
        uid = c.uuid()
        req = wf_obj(ns, name, uid, "Pending")
        req["metadata"] = {k: v for k, v in req["metadata"].items()
                           if k in ("generateName", "labels", "namespace")}
        req.pop("status")
        resp = wf_obj(ns, name, uid, "Pending")
        e = ev("RequestResponse", "/apis/argoproj.io/v1alpha1/namespaces/%s/workflows" % ns, "create",
               c.sa("kubeflow", "ml-pipeline-scheduledworkflow"), "10.244.2.35",
               "controller/v0.0.0 (linux/amd64) kubernetes/$Format",
               ref("workflows", ns, group="argoproj.io", version="v1alpha1"), status={"metadata": {}, "code": 201},
               req=req, resp=resp,
               reason=rbac("ml-pipeline-scheduledworkflow-role-binding", "ml-pipeline-scheduledworkflow-role",
                           "ServiceAccount", "ml-pipeline-scheduledworkflow/kubeflow"))
        return with_received(e)
    add("scheduledworkflow-create-workflow", 0.00001 * variants, (9, 16), wf_create)

    return T


# The "@@ST_S@@" sentinel (second-resolution time inside objects) becomes its own slot.
SLOT_FMT["ST_S"] = "%sZ"
SENTINEL_RE = re.compile(r"@@(AID|RV2|RV|RRS|RR|ST_S|ST)@@")


# --------------------------------------------------------------------------- attack embedding
TS_RE = re.compile(r'"(20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{6})?Z"')


def load_attack(fixture_dir):
    exp = json.load(open(os.path.join(fixture_dir, "expected.json")))
    steps = {}
    for x in exp:
        steps.setdefault(x["auditID"], []).append(x["step"])
    door, day2 = [], []
    with open(os.path.join(fixture_dir, "kubeflow-campaign.jsonl"), encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e["auditID"] in steps:
                (door if "door" in steps[e["auditID"]] else day2).append((e, line.rstrip("\n")))
    return door, day2, steps


def parse_us(s):
    t = dt.datetime.strptime(s[:26] if "." in s else s[:19], "%Y-%m-%dT%H:%M:%S.%f" if "." in s else "%Y-%m-%dT%H:%M:%S")
    return int((t - EPOCH).total_seconds()) * 1_000_000 + t.microsecond


def retime(group, target_us, cap_us=5_000_000):
    """Move the group so that its first request starts at target_us.

    Each request (auditID) keeps its own durations (an exec's ResponseComplete stays 91 s after
    its ResponseStarted); the gaps between the starts of successive requests are kept up to
    cap_us and shortened to cap_us beyond (the burst's 1-2 s spacing is kept as it is). Every
    timestamp of a line moves by its request's delta, so twins stay consistent.
    """
    start = {}
    for e, _ in group:
        t = parse_us(e["requestReceivedTimestamp"])
        start[e["auditID"]] = min(t, start.get(e["auditID"], t))
    order = sorted(start, key=start.get)
    new_start, prev_old, prev_new = {}, None, target_us
    for aid in order:
        old = start[aid]
        prev_new = prev_new if prev_old is None else prev_new + min(old - prev_old, cap_us)
        new_start[aid] = prev_new
        prev_old = old

    def shifter(delta):
        def shift(m):
            base = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
            us = int(m.group(2)[1:]) if m.group(2) else 0
            t = base + dt.timedelta(microseconds=us + delta)
            if m.group(2):
                return '"%s.%06dZ"' % (t.strftime("%Y-%m-%dT%H:%M:%S"), t.microsecond)
            return '"%sZ"' % t.strftime("%Y-%m-%dT%H:%M:%S")
        return shift

    out = []
    for e, line in group:
        delta = new_start[e["auditID"]] - start[e["auditID"]]
        st = parse_us(e["stageTimestamp"]) + delta
        out.append((st, TS_RE.sub(shifter(delta), line), e["auditID"]))
    out.sort(key=lambda x: x[0])
    return out


# --------------------------------------------------------------------------- main loop
def generate(out, size_bytes, seed, attack, rate, fixture_dir, log):
    rng = random.Random(seed)
    cluster = Cluster(rng)
    templates = build_templates(cluster, variants=64)
    weights = [t.weight for t in templates]
    n_t = len(templates)
    fmts = [t.fmt for t in templates]
    slots = [t.slots for t in templates]
    nlines = [t.lines for t in templates]
    lat_lo = [int(t.lat_ms[0] * 1000) for t in templates]
    lat_span = [max(1, int((t.lat_ms[1] - t.lat_ms[0]) * 1000)) for t in templates]

    # per-template slot builders: one tuple per event
    def make_builder(sl):
        parts = []
        for s in sl:
            parts.append({"AID": "A", "RV": "(V,)", "RV2": "(V+1,)", "RR": "Q", "RRS": "Q2", "ST": "S",
                          "ST_S": "(SS,)"}[s])
        body = " + ".join(parts) if parts else "()"
        return eval("lambda A, V, Q, Q2, S, SS: " + body)

    builders = [make_builder(s) for s in slots]

    clock = int((dt.datetime(2021, 6, 8, 0, 0, 0) - EPOCH).total_seconds()) * 1_000_000 + rng.randint(0, 999_999)
    sec_cache = {}

    def sec_str(sec):
        s = sec_cache.get(sec)
        if s is None:
            if len(sec_cache) > 4096:
                sec_cache.clear()
            s = (EPOCH + dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
            sec_cache[sec] = s
        return s

    pending = []  # (stage_us, line, auditID) of attack events not yet written, sorted
    groups = []
    steps = {}
    if attack:
        door, day2, steps = load_attack(fixture_dir)
        groups = [(0.45, door), (0.55, day2)]
    attack_lines = []

    salt = rng.getrandbits(48)
    counter = 0
    lines_written = 0
    events_written = 0
    bytes_written = 0
    getrandbits = rng.getrandbits
    mean_gap = 1_000_000 / rate
    CH = 16384
    t0 = time.time()
    buf = []
    buf_bytes = 0
    FLUSH = 8 * MIB
    next_group_at = groups[0][0] * size_bytes if groups else None
    last_placed = [0]

    def place(g, now):
        """Queue a re-timed group, starting 1 s from now and after the previous group's end."""
        timed = retime(g, max(now, last_placed[0]) + 1_000_000)
        last_placed[0] = max(x[0] for x in timed)
        pending.extend(timed)
        pending.sort(key=lambda x: x[0])

    heap = []      # deferred lines: (stage_us, seq, line, auditID or None for background)
    seq = 0

    while bytes_written + buf_bytes < size_bytes:
        picks = rng.choices(range(n_t), weights=weights, k=CH)
        gaps = [int(rng.expovariate(1.0) * mean_gap) + 1 for _ in range(CH)]
        lat_r = [getrandbits(20) for _ in range(CH)]
        for i in range(CH):
            k = picks[i]
            clock += gaps[i]
            if pending and pending[0][0] <= clock + 3_000_000:
                # attack events join the deferred heap a little ahead of their time
                while pending and pending[0][0] <= clock + 3_000_000:
                    st, line, aid = pending.pop(0)
                    seq += 1
                    heapq.heappush(heap, (st, seq, line + "\n", aid))
            while heap and heap[0][0] <= clock:
                st, _, line, aid = heapq.heappop(heap)
                buf.append(line)
                buf_bytes += len(line)
                lines_written += 1
                if aid is None:
                    events_written += 1
                else:
                    attack_lines.append((lines_written, aid, st))
            lat = lat_lo[k] + lat_r[i] % lat_span[k]
            r = getrandbits(64)
            counter += 1
            A = (r >> 32, (r >> 16) & 0xFFFF, r & 0xFFF, 0x8000 | ((r >> 12) & 0x3FFF), (counter ^ salt) & 0xFFFFFFFFFFFF)
            V = 4_000_000 + counter * 3
            if nlines[k] == 1:
                st_us, rr_us = clock, clock - lat
                S = (sec_str(st_us // 1_000_000), st_us % 1_000_000)
                Q = (sec_str(rr_us // 1_000_000), rr_us % 1_000_000)
                s = fmts[k] % builders[k](A, V, Q, Q, S, S[0])
                buf.append(s)
                buf_bytes += len(s)
                lines_written += 1
                events_written += 1
            else:
                # RequestReceived now, its ResponseComplete when the request ends
                rq2, st_us = clock, clock + lat
                rr_us = clock - 20 - (lat_r[i] & 63)
                S = (sec_str(st_us // 1_000_000), st_us % 1_000_000)
                Q = (sec_str(rr_us // 1_000_000), rr_us % 1_000_000)
                Q2 = (sec_str(rq2 // 1_000_000), rq2 % 1_000_000)
                s = fmts[k] % builders[k](A, V, Q, Q2, S, S[0])
                cut = s.index("\n") + 1
                buf.append(s[:cut])
                buf_bytes += cut
                lines_written += 1
                events_written += 1
                seq += 1
                heapq.heappush(heap, (st_us, seq, s[cut:], None))
            if bytes_written + buf_bytes >= size_bytes:
                break
            if buf_bytes >= FLUSH:
                out.write("".join(buf))
                bytes_written += buf_bytes
                buf = []
                buf_bytes = 0
                if next_group_at is not None and bytes_written >= next_group_at:
                    _, g = groups.pop(0)
                    place(g, clock)
                    next_group_at = groups[0][0] * size_bytes if groups else None
        else:
            continue
        break
    # small files: groups never reached by the flush check
    while groups:
        _, g = groups.pop(0)
        place(g, clock)
    for st, line, aid in pending:
        seq += 1
        heapq.heappush(heap, (st, seq, line + "\n", aid))
    while heap:  # requests still in flight and attack events not yet due: end the file with them
        st, _, line, aid = heapq.heappop(heap)
        buf.append(line)
        buf_bytes += len(line)
        lines_written += 1
        if aid is None:
            events_written += 1
        else:
            attack_lines.append((lines_written, aid, st))
    out.write("".join(buf))
    bytes_written += buf_bytes
    elapsed = time.time() - t0
    n_attack = len(attack_lines)
    log("gen-audit-log: %d events (%d lines, %d attack lines) %.1f MiB in %.2f s = %.1f MB/s (%.1f MiB/s)" % (
        events_written + n_attack, lines_written, n_attack, bytes_written / MIB, elapsed,
        bytes_written / 1e6 / max(elapsed, 1e-9), bytes_written / MIB / max(elapsed, 1e-9)))
    if attack_lines:
        log("attack events at lines (1-based):")
        for ln, aid, st in attack_lines:
            log("  %d %s %s" % (ln, aid, ",".join(steps.get(aid, []))))
    return events_written + n_attack, attack_lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_path", help="output file, or - for stdout")
    ap.add_argument("size_mb", type=float, help="size in MiB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--attack", action="store_true", help="embed the campaign's attack events")
    ap.add_argument("--rate", type=float, default=400.0, help="mean events per second of log time (400)")
    ap.add_argument("--fixtures", default=FIXTURE_DIR, help="directory with kubeflow-campaign.jsonl and expected.json")
    a = ap.parse_args()
    size = int(a.size_mb * MIB)
    log = lambda m: print(m, file=sys.stderr)
    if a.out_path == "-":
        generate(sys.stdout, size, a.seed, a.attack, a.rate, a.fixtures, log)
    else:
        with open(a.out_path, "w", encoding="utf-8", buffering=1 << 20) as f:
            generate(f, size, a.seed, a.attack, a.rate, a.fixtures, log)


if __name__ == "__main__":
    main()
