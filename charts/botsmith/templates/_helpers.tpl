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

{{/* The Secret with MONGO_URL, JWT_SECRET and LLM keys: the user's, or the chart's. */}}
{{- define "botsmith.secretName" -}}
{{- default (printf "%s-secrets" (include "botsmith.fullname" .)) .Values.secrets.existingSecret }}
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

{{/* MONGO_URL when the chart knows it: the bundled replica set's, or secrets.mongoUrl. */}}
{{- define "botsmith.mongoUrl" -}}
{{- if .Values.mongodb.enabled }}
{{- $host := printf "%s-mongodb-0.%s-mongodb.%s.svc:27017" (include "botsmith.fullname" .) (include "botsmith.fullname" .) .Release.Namespace }}
{{- printf "mongodb://%s/?replicaSet=%s" $host .Values.mongodb.replicaSetName }}
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

{{/* Environment shared by the API and the worker: the settings ConfigMap and the Secret. */}}
{{- define "botsmith.envFrom" -}}
- configMapRef:
    name: {{ include "botsmith.fullname" . }}-config
- secretRef:
    name: {{ include "botsmith.secretName" . }}
{{- end }}

{{/* Pod annotations that roll the pods when their settings change. */}}
{{- define "botsmith.checksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret-inputs: {{ toJson .Values.secrets | sha256sum }}
{{- end }}
{{- end }}

{{/* A NetworkPolicy rule's `from`: the given peers, or nothing (any peer) when empty. */}}
{{- define "botsmith.peers" -}}
{{- if . -}}
from:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
