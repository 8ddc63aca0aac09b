{{/*
videopipe.name: the chart name, or nameOverride (63 characters at most).
*/}}
{{- define "videopipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
videopipe.fullname: "<release>-<chart>" (or the release name alone when it already contains the
chart name), truncated to 63 characters because some Kubernetes name fields are limited to that.
*/}}
{{- define "videopipe.fullname" -}}
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

{{/*
videopipe.chart: chart name and version, for the helm.sh/chart label.
*/}}
{{- define "videopipe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
videopipe.labels: the standard labels on every object the chart creates.
*/}}
{{- define "videopipe.labels" -}}
helm.sh/chart: {{ include "videopipe.chart" . }}
{{ include "videopipe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: videopipe
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
videopipe.selectorLabels: name and instance only (selectors are immutable: never add to them).
*/}}
{{- define "videopipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "videopipe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
videopipe.serviceAccountName: the operator's ServiceAccount.
*/}}
{{- define "videopipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "videopipe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
videopipe.workerServiceAccountName: the worker pods' ServiceAccount (no API rights).
*/}}
{{- define "videopipe.workerServiceAccountName" -}}
{{- if .Values.worker.serviceAccount.create }}
{{- default (printf "%s-worker" (include "videopipe.fullname" .) | trunc 63 | trimSuffix "-") .Values.worker.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
videopipe.image: "repository@digest" or "repository:tag" (tag defaults to the appVersion).
Call with (dict "image" .Values.x.image "context" $).
*/}}
{{- define "videopipe.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .context.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
videopipe.namespaces: the namespaces the operator serves in namespaced mode, as a JSON list:
the release namespace first, then operator.watchNamespaces, without duplicates.
*/}}
{{- define "videopipe.namespaces" -}}
{{- $all := list .Release.Namespace }}
{{- range .Values.operator.watchNamespaces }}
{{- $all = append $all . }}
{{- end }}
{{- uniq $all | toJson }}
{{- end }}

{{/*
videopipe.s3SecretName: the Secret with S3 keys for the default VideoSource, or "" for the
default credential chain.
*/}}
{{- define "videopipe.s3SecretName" -}}
{{- if .Values.s3Credentials.existingSecret }}
{{- .Values.s3Credentials.existingSecret }}
{{- else if .Values.s3Credentials.accessKeyId }}
{{- printf "%s-s3" (include "videopipe.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
videopipe.geminiSecretName: the Secret with GEMINI_API_KEY, or "" when there is none.
*/}}
{{- define "videopipe.geminiSecretName" -}}
{{- if .Values.gemini.existingSecret }}
{{- .Values.gemini.existingSecret }}
{{- else if .Values.gemini.apiKey }}
{{- printf "%s-gemini" (include "videopipe.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
videopipe.clusterName: the name of cluster-scoped objects (ClusterRoles and their bindings).
Release names are unique per namespace only, so the namespace is part of it: two releases
"videopipe" in two namespaces must not fight over one ClusterRole.
*/}}
{{- define "videopipe.clusterName" -}}
{{- printf "%s-%s" (include "videopipe.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
videopipe.eventsName: the events Service and Ingress, "<fullname>-events" (63 characters at most).
*/}}
{{- define "videopipe.eventsName" -}}
{{- printf "%s-events" (include "videopipe.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
videopipe.webhookExcept: the webhook egress rule's except list as a JSON list: link-local (cloud
metadata), the private and shared ranges, then the IPv4 ones of notifications.denyCIDRs (an
IPv6 range cannot be an except of 0.0.0.0/0; the policy allows no IPv6 address anyway).
*/}}
{{- define "videopipe.webhookExcept" -}}
{{- $all := list "169.254.0.0/16" "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" "100.64.0.0/10" }}
{{- range .Values.notifications.denyCIDRs }}
{{- if not (contains ":" .) }}
{{- $all = append $all . }}
{{- end }}
{{- end }}
{{- uniq $all | toJson }}
{{- end }}
