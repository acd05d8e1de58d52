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

{{/* The image reference; the tag defaults to the chart's appVersion. */}}
{{- define "botsmith.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The name of the ConfigMap holding the effective read policy. */}}
{{- define "botsmith.readPolicyConfigMap" -}}
{{- printf "%s-read-policy" (include "botsmith.fullname" .) }}
{{- end }}
