{{/*
Labels of every object: the two the kustomize install (manifests/) sets, then
Helm's own. Objects keep fixed names (fnol-operator, ...): the operator's Lease,
the scorer pods' NetworkPolicies and the docs name them, so one release of this
chart runs per cluster.
*/}}
{{- define "fnol.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: fnol-serving
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The operator's labels: include "fnol.operatorLabels" . */}}
{{- define "fnol.operatorLabels" -}}
{{ include "fnol.labels" (dict "name" "fnol-operator" "root" .) }}
{{- end -}}

{{/*
An image reference from { repository, tag, digest }: repository@digest when a
digest is set (the tag is then ignored), else repository:tag.
*/}}
{{- define "fnol.image" -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else if .tag -}}
{{ .repository }}:{{ .tag }}
{{- else -}}
{{ fail (printf "images: %s has neither a tag nor a digest; set its digest (sha256:<64 hex digits>) or its tag" .repository) }}
{{- end -}}
{{- end -}}

{{/* The namespace the operator's FnolModels live in, checked against rbac.namespaced. */}}
{{- define "fnol.checkValues" -}}
{{- if and .Values.rbac.namespaced (not .Values.watchNamespace) -}}
{{ fail "rbac.namespaced is true but watchNamespace is empty: set watchNamespace to the one namespace the operator may act in, or set rbac.namespaced to false for cluster-wide rights" }}
{{- end -}}
{{- with .Values.scorerTracing -}}
{{- if and .endpoint (not .egress.namespaces) (not .egress.cidrs) -}}
{{ fail "scorerTracing.endpoint is set but the scorer pods may not reach it: set scorerTracing.egress.namespaces (the collector's namespace) and/or scorerTracing.egress.cidrs" }}
{{- end -}}
{{- if and (not .endpoint) (or .egress.namespaces .egress.cidrs .egress.podLabels) -}}
{{ fail "scorerTracing.egress is set but scorerTracing.endpoint is empty: set the collector's URL, or remove the egress settings" }}
{{- end -}}
{{- end -}}
{{- $managed := list "POD_NAME" "POD_NAMESPACE" "FNOL_SCORER_IMAGE" "WATCH_NAMESPACE" "VERIFY_MODEL_DIGEST" "MODEL_ALLOWED_HOSTS" "MODEL_LOCAL_MODE" "INGRESS_CONTROLLER_NAMESPACES" "MONITORING_NAMESPACES" "LOG_LEVEL" "SCORER_TRACES_ENDPOINT" "SCORER_TRACES_EGRESS_NAMESPACES" "SCORER_TRACES_EGRESS_POD_LABELS" "SCORER_TRACES_EGRESS_CIDRS" -}}
{{- range .Values.extraEnv -}}
{{- if has .name $managed -}}
{{ fail (printf "extraEnv sets %s, which the chart sets from its own value; remove it from extraEnv and set the value instead (docs/helm.md lists which)" .name) }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A label map as comma-separated key=value pairs, sorted by key. */}}
{{- define "fnol.labelPairs" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
