{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "iggy-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: the release name, plus the chart name unless the
release name already contains it. */}}
{{- define "iggy-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "iggy-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iggy-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "iggy-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "iggy-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "iggy-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iggy-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "iggy-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The rules the operator needs on its own resources and on what it
creates for each IggyCluster, wherever it watches. */}}
{{- define "iggy-operator.watchRules" -}}
- apiGroups: [iggy.rs]
  resources: [iggyclusters, iggytopics]
  verbs: [get, list, watch, patch, update]
- apiGroups: [iggy.rs]
  resources: [iggyclusters/status, iggytopics/status]
  verbs: [get, patch, update]
- apiGroups: [iggy.rs]
  resources: [iggyclusters/finalizers, iggytopics/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [configmaps, services, secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch, delete]
# Rolling updates: read the broker pods, restart one at a time through the
# Eviction API (which honours the PodDisruptionBudget); never delete.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
# Storage growth: the brokers' claims get a larger request.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors]
  verbs: [get, create, patch, delete]
{{- if or .Values.rbac.certManager (.Capabilities.APIVersions.Has "cert-manager.io/v1/Certificate") }}
# spec.tls.mode CertManager: the brokers' Certificate, and its Issuing
# condition for a forced renewal (iggy.rs/renew-certificates).
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [get, create, patch, delete]
- apiGroups: [cert-manager.io]
  resources: [certificates/status]
  verbs: [patch]
{{- end }}
{{- end }}
