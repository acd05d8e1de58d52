{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "botsmith.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name of the chart's objects. */}}
{{- define "botsmith.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Standard labels on every object. */}}
{{- define "botsmith.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "botsmith.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: botsmith
{{- end }}

{{/* Selector labels: name and instance only (they never change on upgrade). */}}
{{- define "botsmith.selectorLabels" -}}
app.kubernetes.io/name: {{ include "botsmith.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The Secret with JWT_SECRET, REDIS_URL and the LLM keys: the user's, or the chart's. */}}
{{- define "botsmith.secretName" -}}
{{- default (printf "%s-secrets" (include "botsmith.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* The chart's own Secret holding MONGO_URL alone. */}}
{{- define "botsmith.chartMongoUrlSecretName" -}}
{{- printf "%s-mongodb-url" (include "botsmith.fullname" .) }}
{{- end }}

{{/* The Secret holding MONGO_URL alone, the only one the operator may read: the user's, or the
chart's. Empty when an existingSecret is trusted to carry MONGO_URL among the other secrets. */}}
{{- define "botsmith.mongoUrlSecretName" -}}
{{- if .Values.secrets.existingMongoUrlSecret }}
{{- .Values.secrets.existingMongoUrlSecret }}
{{- else if or (include "botsmith.mongoUrl" .) (not .Values.secrets.existingSecret) }}
{{- include "botsmith.chartMongoUrlSecretName" . }}
{{- end }}
{{- end }}

{{/* MONGO_URL from its own Secret; an explicit variable wins over the app Secret's envFrom. */}}
{{- define "botsmith.mongoUrlEnv" -}}
{{- with include "botsmith.mongoUrlSecretName" . }}
- name: MONGO_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: MONGO_URL
{{- end }}
{{- end }}

{{/* Refuses values that would render an unstable or over-privileged release. */}}
{{- define "botsmith.validate" -}}
{{- $secrets := .Values.secrets }}
{{- if not (or $secrets.jwtSecret $secrets.existingSecret) }}
{{- fail (printf `secrets.jwtSecret (at least 32 random characters: openssl rand -hex 32) or secrets.existingSecret (a Secret with JWT_SECRET) is required: the chart never generates one, so that every render is the same. Upgrading a release whose chart generated it? Keep that one: --set secrets.jwtSecret="$(kubectl -n %s get secret %s-secrets -o jsonpath={.data.JWT_SECRET} | base64 -d)"` .Release.Namespace (include "botsmith.fullname" .)) }}
{{- end }}
{{- if and $secrets.jwtSecret (not $secrets.existingSecret) (lt (len $secrets.jwtSecret) 32) }}
{{- fail "secrets.jwtSecret must be at least 32 characters (openssl rand -hex 32)" }}
{{- end }}
{{- if and .Values.operator.enabled (not (include "botsmith.mongoUrlSecretName" .)) }}
{{- fail "secrets.existingSecret: put MONGO_URL in a Secret of its own and name it in secrets.existingMongoUrlSecret (or set secrets.mongoUrl); the operator may read that Secret only, never the one with JWT_SECRET and the LLM keys" }}
{{- end }}
{{- end }}

{{/* The image reference: by digest when one is given, else by tag (the chart's appVersion). */}}
{{- define "botsmith.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The name of the ConfigMap holding the effective read policy. */}}
{{- define "botsmith.readPolicyConfigMap" -}}
{{- printf "%s-read-policy" (include "botsmith.fullname" .) }}
{{- end }}

{{/* Labels of one component: the standard labels plus app.kubernetes.io/component. */}}
{{- define "botsmith.componentLabels" -}}
{{ include "botsmith.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of one component. */}}
{{- define "botsmith.componentSelectorLabels" -}}
{{ include "botsmith.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* MONGO_URL when the chart knows it: the bundled database's (`?replicaSet=` only for a replica
set), or secrets.mongoUrl. */}}
{{- define "botsmith.mongoUrl" -}}
{{- if .Values.mongodb.enabled }}
{{- $host := printf "%s-mongodb-0.%s-mongodb.%s.svc:27017" (include "botsmith.fullname" .) (include "botsmith.fullname" .) .Release.Namespace }}
{{- if eq .Values.mongodb.engine "ferretdb" }}
{{- printf "mongodb://%s/" $host }}
{{- else }}
{{- printf "mongodb://%s/?replicaSet=%s" $host .Values.mongodb.replicaSetName }}
{{- end }}
{{- else }}
{{- .Values.secrets.mongoUrl }}
{{- end }}
{{- end }}

{{/* REDIS_URL when the chart knows it: the bundled Redis's, or secrets.redisUrl. */}}
{{- define "botsmith.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s-redis.%s.svc:6379/0" (include "botsmith.fullname" .) .Release.Namespace }}
{{- else }}
{{- .Values.secrets.redisUrl }}
{{- end }}
{{- end }}

{{/* Whether Redis is configured: the worker needs it (an existing Secret is trusted to hold it). */}}
{{- define "botsmith.hasRedis" -}}
{{- if or .Values.redis.enabled .Values.secrets.redisUrl .Values.secrets.existingSecret }}true{{ end }}
{{- end }}

{{/* Environment shared by the API and the worker: the settings ConfigMap and the Secret
(MONGO_URL comes from its own Secret, see botsmith.mongoUrlEnv). */}}
{{- define "botsmith.envFrom" -}}
- configMapRef:
    name: {{ include "botsmith.fullname" . }}-config
- secretRef:
    name: {{ include "botsmith.secretName" . }}
{{- end }}

{{/* Pod annotations that roll the pods when their settings change. */}}
{{- define "botsmith.checksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret-inputs: {{ toJson .Values.secrets | sha256sum }}
{{- end }}

{{/* A NetworkPolicy rule's `from`: the given peers, or nothing (any peer) when empty. */}}
{{- define "botsmith.peers" -}}
{{- if . -}}
from:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Networks the worker may not reach unless `worker.egress.allow` names them: private,
shared (carrier-grade NAT), loopback and link-local (the cloud metadata service) ranges. */}}
{{- define "botsmith.privateRangesV4" -}}
["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/8"]
{{- end }}
{{- define "botsmith.privateRangesV6" -}}
["fc00::/7", "fe80::/10", "::1/128"]
{{- end }}
