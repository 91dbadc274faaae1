{{/* The chart's name, and the release's full name (release-chart, at most 63 characters). */}}
{{- define "octavia.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "octavia.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; the selector labels take a component (serve, worker, redis). */}}
{{- define "octavia.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "octavia.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "octavia.selectorLabels" -}}
app.kubernetes.io/name: {{ include "octavia.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image, by digest when one is given. */}}
{{- define "octavia.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the broker URL (key `url`). */}}
{{- define "octavia.brokerSecret" -}}
{{- if and (not .Values.redis.enabled) .Values.redis.existingSecret -}}
{{- .Values.redis.existingSecret -}}
{{- else -}}
{{- printf "%s-broker" (include "octavia.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "octavia.dataClaim" -}}
{{- .Values.persistence.data.existingClaim | default (printf "%s-data" (include "octavia.fullname" .)) -}}
{{- end -}}

{{- define "octavia.modelsClaim" -}}
{{- .Values.persistence.models.existingClaim | default (printf "%s-models" (include "octavia.fullname" .)) -}}
{{- end -}}

{{/* The pod security context of serve and the workers. */}}
{{- define "octavia.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
fsGroup: {{ .Values.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container security context: no privileges, a read-only root (HOME and /tmp are
emptyDirs, the data and models volumes are mounted). */}}
{{- define "octavia.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
capabilities:
  drop:
    - ALL
{{- end -}}

{{/* The environment of serve and the workers: the broker URL and the voice key from their
Secrets, numba's cache on /tmp (the root file system is read-only), settings. */}}
{{- define "octavia.env" -}}
- name: OCTAVIA_BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "octavia.brokerSecret" . }}
      key: url
- name: OCTAVIA_VOICE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.voiceKey.existingSecret | default (printf "%s-voice-key" (include "octavia.fullname" .)) }}
      key: {{ .Values.voiceKey.secretKey }}
- name: NUMBA_CACHE_DIR
  value: /tmp/numba
{{- if .Values.serve.publicUrl }}
- name: OCTAVIA_SERVE_PUBLIC_URL
  value: {{ .Values.serve.publicUrl | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The volumes every Octavia pod mounts. */}}
{{- define "octavia.volumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "octavia.dataClaim" . }}
- name: models
  persistentVolumeClaim:
    claimName: {{ include "octavia.modelsClaim" . }}
- name: home
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "octavia.volumeMounts" -}}
- name: data
  mountPath: /data
- name: models
  mountPath: /models
- name: home
  mountPath: /home/octavia
- name: tmp
  mountPath: /tmp
{{- end -}}
