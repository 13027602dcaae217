{{/* Names and labels shared by every template. */}}
{{- define "aragora.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aragora.labels" -}}
app: {{ .Chart.Name }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway"). */}}
{{- define "aragora.selector" -}}
app: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "aragora.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "aragora.apiKeysSecret" -}}
{{ .Values.existingSecrets.apiKeys | default (printf "%s-api-keys" (include "aragora.fullname" .)) }}
{{- end -}}

{{- define "aragora.databaseSecret" -}}
{{ .Values.existingSecrets.database | default (printf "%s-db" (include "aragora.fullname" .)) }}
{{- end -}}

{{- define "aragora.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- $full := include "aragora.fullname" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.nats.replicas) -}}
{{- $urls = append $urls (printf "nats://%s-nats-%d.%s-nats-headless:4222" $full $i $full) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- required "nats.natsUrl is required when nats.enabled=false" .Values.nats.natsUrl -}}
{{- end -}}
{{- end -}}

{{- define "aragora.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379/0" (include "aragora.fullname" .) -}}
{{- else -}}
{{- .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{/*
One service's Deployment: (dict "root" $ "component" "orchestrator" "module"
"aragora.orchestrator" "replicas" 2 "resources" {...} "grace" 30 "gateway" false
"metricsPort" 9101). metricsPort: its /metrics, /healthz and /readyz port (the probes').
*/}}
{{- define "aragora.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    {{- include "aragora.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {{- include "aragora.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "aragora.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    spec:
      terminationGracePeriodSeconds: {{ .grace }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "aragora.selector" . | nindent 14 }}
      containers:
        - name: {{ .container }}
          image: {{ include "aragora.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["python", "-m", {{ .module | quote }}]
          env:
            - name: ARAGORA_INSTANCE_ID
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
          envFrom:
            - configMapRef:
                name: {{ include "aragora.fullname" $root }}-config
            - secretRef:
                name: {{ include "aragora.apiKeysSecret" $root }}
            - secretRef:
                name: {{ include "aragora.databaseSecret" $root }}
          {{- if .metricsPort }}
          ports:
            - containerPort: {{ .metricsPort }}
              name: metrics
          # /healthz: the event loop turns (NATS or database outages never restart the pod);
          # /readyz: its dependencies answer (NATS, JetStream, consumers, event store).
          livenessProbe:
            httpGet:
              path: /healthz
              port: metrics
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: metrics
            initialDelaySeconds: 5
            periodSeconds: 5
            timeoutSeconds: 5
            failureThreshold: 3
          {{- end }}
          {{- if .gateway }}
          ports:
            - containerPort: 8080
              name: http
            - containerPort: 8766
              name: websocket
          # /healthz: the process answers; /api/health: 503 only when neither the
          # database nor NATS can be reached.
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 30
            periodSeconds: 10
          readinessProbe:
            httpGet:
              path: /api/health
              port: http
            initialDelaySeconds: 5
            periodSeconds: 5
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "5"]
          {{- end }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: data
              mountPath: /var/lib/aragora
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: data
          emptyDir: {}
        - name: tmp
          emptyDir: {}
{{- end -}}

{{/* HorizontalPodAutoscaler: (dict "root" $ "name" .. "target" .. "component" .. "a" autoscaling). */}}
{{- define "aragora.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  labels:
    {{- include "aragora.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .target }}
  minReplicas: {{ .a.minReplicas }}
  maxReplicas: {{ .a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ .a.targetMemoryUtilizationPercentage }}
{{- end -}}
