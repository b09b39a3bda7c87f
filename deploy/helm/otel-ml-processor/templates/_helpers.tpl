{{- define "otel-ml-processor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "otel-ml-processor.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The headless Service: the StatefulSet's governing service and the load-balancing exporter's DNS name. */}}
{{- define "otel-ml-processor.headless" -}}
{{- printf "%s-headless" (include "otel-ml-processor.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "otel-ml-processor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otel-ml-processor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "otel-ml-processor.labels" -}}
{{ include "otel-ml-processor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: processor
app.kubernetes.io/part-of: otel-ml
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "otel-ml-processor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "otel-ml-processor.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "otel-ml-processor.tokenSecret" -}}
{{- if .Values.auth.token -}}
{{- printf "%s-token" (include "otel-ml-processor.fullname" .) -}}
{{- else -}}
{{- .Values.auth.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "otel-ml-processor.referencesConfigMap" -}}
{{- if .Values.references.files -}}
{{- printf "%s-references" (include "otel-ml-processor.fullname" .) -}}
{{- else -}}
{{- .Values.references.configMap -}}
{{- end -}}
{{- end -}}
