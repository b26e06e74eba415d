//! The kubelet of the one node: runs bound pods' containers with podman (runc, host networking,
//! local images only), and reports them back through the pods' status subresource.
//!
//! Per pod: images must exist locally (`ErrImagePull`, then `ImagePullBackOff`, with Events;
//! nothing runs); volumes (emptyDir, secret, configMap, downwardAPI, projected service-account
//! token with `ca.crt` and `namespace`) are laid out under the world's directory and bind-mounted;
//! environment (values, secretKeyRef, configMapKeyRef, fieldRef, envFrom) is resolved, a missing
//! object or key giving `CreateContainerConfigError` (retried every second, as the kubelet does);
//! `runAsNonRoot` with UID 0 is refused; `fsGroup` owns and may read volume files; init containers run in order (native sidecars keep running beside the main containers until those end), then the main containers;
//! exit codes set the phase, `terminationMessagePath` is read (4096 bytes at most); logs are kept
//! with timestamps for `pods/log` and `TestWorld::container_logs`, also after a pod is deleted.
//! Deleting a pod stops its containers with its grace period.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use crate::auth::{self, Tokens, User};
use crate::clock;
use crate::controllers::{NODE_NAME, record_event, set_condition};
use crate::resources::ids;
use crate::server::LogRequest;
use crate::status::ApiError;
use crate::world::{DeleteOptions, Part, World, WriteOptions, meta_str};

/// The most of a termination message that is kept.
const MAX_TERMINATION_MESSAGE: usize = 4096;

/// How often the kubelet looks at pods without a change.
const TICK: Duration = Duration::from_millis(250);

/// The kubelet's state.
pub(crate) struct Kubelet {
    world: Arc<World>,
    tokens: Arc<Tokens>,
    root: PathBuf,
    api_port: u16,
    containers_conf: Option<PathBuf>,
    /// Pods with a running task, by uid: the sender stops them.
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Pods whose task has ended, by uid. Why: a sync that read the pod just before its task
    /// wrote the final status must not run its containers a second time.
    ran: Mutex<std::collections::HashSet<String>>,
    /// Container logs by (pod uid, container): the file and whether the container has ended.
    logs: Mutex<HashMap<(String, String), ContainerLog>>,
    /// Names of the podman containers running now.
    containers: Mutex<std::collections::HashSet<String>>,
}

/// A container's log file and whether the container has ended.
type ContainerLog = (PathBuf, watch::Receiver<bool>);

/// Why a container could not be configured (and whether it is a volume's fault).
struct ConfigError {
    message: String,
    volume: bool,
}

fn config_error(message: String) -> ConfigError {
    ConfigError {
        message,
        volume: false,
    }
}

impl Kubelet {
    /// A kubelet keeping its files under `root`.
    pub(crate) fn new(
        world: Arc<World>,
        tokens: Arc<Tokens>,
        root: PathBuf,
        api_port: u16,
        containers_conf: Option<PathBuf>,
    ) -> Self {
        Kubelet {
            world,
            tokens,
            root,
            api_port,
            containers_conf,
            running: Mutex::new(HashMap::new()),
            ran: Mutex::new(std::collections::HashSet::new()),
            logs: Mutex::new(HashMap::new()),
            containers: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Removes every container still running (the world is stopping), waiting for podman.
    pub(crate) fn remove_all_containers(&self) {
        let names: Vec<String> = self
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        if names.is_empty() {
            return;
        }
        let mut cmd = std::process::Command::new("podman");
        if let Some(conf) = &self.containers_conf {
            cmd.env("CONTAINERS_CONF", conf);
        }
        let _ = cmd
            .args(["rm", "--force", "--time", "0", "--ignore"])
            .args(&names)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn podman(&self) -> Command {
        let mut cmd = Command::new("podman");
        if let Some(conf) = &self.containers_conf {
            cmd.env("CONTAINERS_CONF", conf);
        }
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }

    /// Runs the kubelet until the world's change channel closes.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut changes = self.world.subscribe();
        loop {
            self.sync();
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// Starts tasks for new pods, stops deleted ones, finalizes finished deletions.
    fn sync(self: &Arc<Self>) {
        let pods: Vec<Value> = self
            .world
            .lock()
            .iter_type(ids::PODS, None)
            .filter(|p| p["spec"]["nodeName"] == json!(NODE_NAME))
            .cloned()
            .collect();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let ran = self.ran.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for pod in pods {
            let uid = meta_str(&pod, "uid").to_string();
            let deleting = pod["metadata"].get("deletionTimestamp").is_some();
            let terminal = matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded") | Some("Failed")
            );
            match running.get(&uid) {
                Some(stop) if deleting => {
                    stop.send_replace(true);
                }
                Some(_) => {}
                None if deleting => {
                    self.finalize(&pod);
                }
                None if terminal || ran.contains(&uid) => {}
                None => {
                    let (stop, stop_rx) = watch::channel(false);
                    running.insert(uid.clone(), stop);
                    let kubelet = Arc::clone(self);
                    tokio::spawn(async move {
                        kubelet.run_pod(pod.clone(), stop_rx).await;
                        kubelet
                            .ran
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(uid.clone());
                        kubelet
                            .running
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&uid);
                        let current = kubelet
                            .world
                            .get(
                                ids::PODS,
                                meta_str(&pod, "namespace"),
                                meta_str(&pod, "name"),
                            )
                            .ok()
                            .filter(|p| meta_str(p, "uid") == uid);
                        if let Some(current) = current
                            && current["metadata"].get("deletionTimestamp").is_some()
                        {
                            kubelet.finalize(&current);
                        }
                    });
                }
            }
        }
    }

    /// Removes a deleted pod whose containers have stopped (the kubelet's grace-0 delete).
    fn finalize(&self, pod: &Value) {
        let opts = DeleteOptions {
            grace_period: Some(0),
            precondition_uid: Some(meta_str(pod, "uid").to_string()),
            ..DeleteOptions::default()
        };
        if let Err(e) = self.world.delete(
            ids::PODS,
            meta_str(pod, "namespace"),
            meta_str(pod, "name"),
            &opts,
        ) {
            log::debug!("finalizing pod {}: {e}", meta_str(pod, "name"));
        }
    }

    /// Changes the pod's status with `change`, retrying on conflicts.
    fn update_status(&self, pod: &Value, change: impl Fn(&mut Value)) {
        let ns = meta_str(pod, "namespace");
        let name = meta_str(pod, "name");
        for _ in 0..10 {
            let Ok(mut current) = self.world.get(ids::PODS, ns, name) else {
                return;
            };
            if meta_str(&current, "uid") != meta_str(pod, "uid") {
                return;
            }
            change(&mut current["status"]);
            let opts = WriteOptions {
                field_manager: Some("kubelet".into()),
                ..WriteOptions::default()
            };
            match self
                .world
                .update(ids::PODS, ns, name, current, Part::Status, &opts)
            {
                Ok(w) => {
                    self.world.record_warnings(&w.warnings);
                    return;
                }
                Err(ApiError::Conflict { .. }) => continue,
                Err(e) => {
                    log::warn!("pod status {ns}/{name}: {e}");
                    return;
                }
            }
        }
    }

    fn event(&self, pod: &Value, kind: &str, reason: &str, message: &str) {
        record_event(
            &self.world,
            ids::PODS,
            pod,
            kind,
            reason,
            message,
            "kubelet",
        );
    }

    async fn image_exists(&self, image: &str) -> bool {
        self.podman()
            .args(["image", "exists", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    async fn image_user(&self, image: &str) -> String {
        let out = self
            .podman()
            .args(["image", "inspect", "--format", "{{.Config.User}}", image])
            .output()
            .await;
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    async fn run_pod(self: &Arc<Self>, pod: Value, mut stop: watch::Receiver<bool>) {
        let uid = meta_str(&pod, "uid").to_string();
        let init: Vec<Value> = pod["spec"]["initContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let main: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let waiting = |c: &Value, reason: &str, message: Option<&str>| {
            let mut state = json!({"waiting": {"reason": reason}});
            if let Some(m) = message {
                state["waiting"]["message"] = json!(m);
            }
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                "restartCount": 0, "started": false, "state": state})
        };
        let now = clock::now_rfc3339();
        self.update_status(&pod, |s| {
            s["phase"] = json!("Pending");
            s["hostIP"] = json!("127.0.0.1");
            s["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
            s["podIP"] = json!("127.0.0.1");
            s["podIPs"] = json!([{"ip": "127.0.0.1"}]);
            s["startTime"] = json!(now);
            set_condition(
                s,
                cond(
                    "Initialized",
                    init.is_empty(),
                    if init.is_empty() {
                        ""
                    } else {
                        "ContainersNotInitialized"
                    },
                ),
            );
            set_condition(s, cond("Ready", false, "ContainersNotReady"));
            set_condition(s, cond("ContainersReady", false, "ContainersNotReady"));
            if !init.is_empty() {
                s["initContainerStatuses"] = json!(
                    init.iter()
                        .map(|c| waiting(c, "PodInitializing", None))
                        .collect::<Vec<_>>()
                );
            }
            s["containerStatuses"] = json!(
                main.iter()
                    .map(|c| waiting(c, "ContainerCreating", None))
                    .collect::<Vec<_>>()
            );
        });

        // Images: local only.
        for (list, c) in init
            .iter()
            .map(|c| ("initContainerStatuses", c))
            .chain(main.iter().map(|c| ("containerStatuses", c)))
        {
            let image = c["image"].as_str().unwrap_or("").to_string();
            if self.image_exists(&image).await {
                continue;
            }
            let message = format!(
                "Failed to pull image \"{image}\": image not found in the local store and the test world never pulls"
            );
            self.set_waiting(&pod, list, c, "ErrImagePull", &message);
            self.event(
                &pod,
                "Normal",
                "Pulling",
                &format!("Pulling image \"{image}\""),
            );
            self.event(&pod, "Warning", "Failed", &message);
            self.event(&pod, "Warning", "Failed", "Error: ErrImagePull");
            if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                return;
            }
            let backoff = format!("Back-off pulling image \"{image}\"");
            self.set_waiting(&pod, list, c, "ImagePullBackOff", &backoff);
            self.event(&pod, "Normal", "BackOff", &backoff);
            self.event(&pod, "Warning", "Failed", "Error: ImagePullBackOff");
            let _ = stop.wait_for(|s| *s).await;
            return;
        }

        // Configuration: volumes and environment, retried until they resolve.
        let pod_dir = self.root.join("pods").join(&uid);
        let mut reported = String::new();
        let prepared = loop {
            let fresh = self
                .world
                .get(
                    ids::PODS,
                    meta_str(&pod, "namespace"),
                    meta_str(&pod, "name"),
                )
                .unwrap_or_else(|_| pod.clone());
            match self.prepare(&fresh, &pod_dir, &init, &main).await {
                Ok(p) => break p,
                Err((container, list, e)) => {
                    if e.message != reported {
                        reported = e.message.clone();
                        if e.volume {
                            self.event(&pod, "Warning", "FailedMount", &e.message);
                        } else {
                            self.set_waiting(
                                &pod,
                                list,
                                &container,
                                "CreateContainerConfigError",
                                &e.message,
                            );
                            self.event(&pod, "Warning", "Failed", &format!("Error: {}", e.message));
                        }
                    }
                    if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };

        // Init containers, in order; native sidecars (restartPolicy: Always) start in their
        // turn and keep running beside the main containers.
        let (sidecar_stop, sidecar_stop_rx) = watch::channel(false);
        let mut sidecars = Vec::new();
        {
            let mut pod_stop = stop.clone();
            let sidecar_stop = sidecar_stop.clone();
            tokio::spawn(async move {
                if pod_stop.wait_for(|s| *s).await.is_ok() {
                    sidecar_stop.send_replace(true);
                }
            });
        }
        for (i, c) in init.iter().enumerate() {
            let args = &prepared[i];
            if c["restartPolicy"] == json!("Always") {
                let kubelet = Arc::clone(self);
                let (sidecar_pod, sidecar, args, pod_dir) =
                    (pod.clone(), c.clone(), args.clone(), pod_dir.clone());
                let mut rx = sidecar_stop_rx.clone();
                sidecars.push(tokio::spawn(async move {
                    kubelet
                        .run_container(
                            &sidecar_pod,
                            "initContainerStatuses",
                            &sidecar,
                            &args,
                            &mut rx,
                            &pod_dir,
                        )
                        .await
                }));
                // Why: the next init container starts once the sidecar has started.
                self.wait_started(&pod, c).await;
                continue;
            }
            let code = self
                .run_container(&pod, "initContainerStatuses", c, args, &mut stop, &pod_dir)
                .await;
            if code != 0 {
                stop_sidecars(&sidecar_stop, sidecars).await;
                self.update_status(&pod, |s| {
                    s["phase"] = json!("Failed");
                    set_condition(s, cond("Initialized", false, "ContainersNotInitialized"));
                    for (idx, c) in main.iter().enumerate() {
                        s["containerStatuses"][idx] = waiting(c, "PodInitializing", None);
                    }
                });
                return;
            }
            if *stop.borrow() {
                return;
            }
        }
        if !init.is_empty() {
            self.update_status(&pod, |s| {
                set_condition(s, cond("Initialized", true, ""));
                for (idx, c) in main.iter().enumerate() {
                    s["containerStatuses"][idx] = waiting(c, "ContainerCreating", None);
                }
            });
        }

        // Main containers, together.
        let mut handles = Vec::new();
        for (i, c) in main.iter().enumerate() {
            let kubelet = Arc::clone(self);
            let pod = pod.clone();
            let c = c.clone();
            let args = prepared[init.len() + i].clone();
            let mut stop = stop.clone();
            let pod_dir = pod_dir.clone();
            handles.push(tokio::spawn(async move {
                kubelet
                    .run_container(&pod, "containerStatuses", &c, &args, &mut stop, &pod_dir)
                    .await
            }));
        }
        let mut all_ok = true;
        for h in handles {
            all_ok &= h.await.unwrap_or(1) == 0;
        }
        // Sidecars stop once the main containers have ended; they do not decide the phase.
        stop_sidecars(&sidecar_stop, sidecars).await;
        self.update_status(&pod, |s| {
            s["phase"] = json!(if all_ok { "Succeeded" } else { "Failed" });
            set_condition(s, cond("Ready", false, "PodCompleted"));
            set_condition(s, cond("ContainersReady", false, "PodCompleted"));
        });
    }

    /// Waits (bounded) until a container's status shows it running or ended.
    async fn wait_started(&self, pod: &Value, c: &Value) {
        for _ in 0..600 {
            let started = self
                .world
                .get(ids::PODS, meta_str(pod, "namespace"), meta_str(pod, "name"))
                .ok()
                .and_then(|p| {
                    p["status"]["initContainerStatuses"]
                        .as_array()?
                        .iter()
                        .find(|s| s["name"] == c["name"])
                        .map(|s| s["state"].get("waiting").is_none())
                })
                .unwrap_or(true);
            if started {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn set_waiting(&self, pod: &Value, list: &str, c: &Value, reason: &str, message: &str) {
        let name = c["name"].clone();
        self.update_status(pod, |s| {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut)
                && let Some(entry) = cs.iter_mut().find(|e| e["name"] == name)
            {
                entry["state"] = json!({"waiting": {"reason": reason, "message": message}});
            }
        });
    }

    /// Lays out volumes and resolves every container's podman arguments.
    async fn prepare(
        &self,
        pod: &Value,
        pod_dir: &Path,
        init: &[Value],
        main: &[Value],
    ) -> Result<Vec<Vec<String>>, (Value, &'static str, ConfigError)> {
        let volumes = self.volumes(pod, pod_dir).map_err(|e| {
            (
                main.first().cloned().unwrap_or_default(),
                "containerStatuses",
                e,
            )
        })?;
        let mut out = Vec::new();
        for (list, c) in init
            .iter()
            .map(|c| ("initContainerStatuses", c))
            .chain(main.iter().map(|c| ("containerStatuses", c)))
        {
            let args = self
                .container_args(pod, c, &volumes, pod_dir)
                .await
                .map_err(|e| (c.clone(), list, e))?;
            out.push(args);
        }
        Ok(out)
    }

    /// Writes each volume's content; returns the host directory of each volume by name.
    fn volumes(
        &self,
        pod: &Value,
        pod_dir: &Path,
    ) -> Result<HashMap<String, PathBuf>, ConfigError> {
        let ns = meta_str(pod, "namespace");
        let mut out = HashMap::new();
        let fs_group = pod["spec"]["securityContext"]["fsGroup"]
            .as_u64()
            .map(|g| g as u32);
        let io = |e: std::io::Error| ConfigError {
            message: format!("volume setup failed: {e}"),
            volume: true,
        };
        for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap_or("").to_string();
            let dir = pod_dir.join("volumes").join(&name);
            std::fs::create_dir_all(&dir).map_err(io)?;
            let mount_err = |m: String| ConfigError {
                message: format!("MountVolume.SetUp failed for volume \"{name}\" : {m}"),
                volume: true,
            };
            let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
            if v.get("emptyDir").is_some() {
                set_mode(&dir, 0o777).map_err(io)?;
            } else if let Some(s) = v.get("secret") {
                let mode = s["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                match self.object_data(ids::SECRETS, ns, s["secretName"].as_str().unwrap_or("")) {
                    Some(data) => {
                        files.extend(select_items(&data, &s["items"], mode).map_err(mount_err)?)
                    }
                    None if s["optional"] == json!(true) => {}
                    None => {
                        return Err(mount_err(format!(
                            "secret \"{}\" not found",
                            s["secretName"].as_str().unwrap_or("")
                        )));
                    }
                }
            } else if let Some(c) = v.get("configMap") {
                let mode = c["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                match self.object_data(ids::CONFIGMAPS, ns, c["name"].as_str().unwrap_or("")) {
                    Some(data) => {
                        files.extend(select_items(&data, &c["items"], mode).map_err(mount_err)?)
                    }
                    None if c["optional"] == json!(true) => {}
                    None => {
                        return Err(mount_err(format!(
                            "configmap \"{}\" not found",
                            c["name"].as_str().unwrap_or("")
                        )));
                    }
                }
            } else if let Some(d) = v.get("downwardAPI") {
                let mode = d["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                for item in d["items"].as_array().into_iter().flatten() {
                    let value =
                        field_value(pod, item["fieldRef"]["fieldPath"].as_str().unwrap_or(""));
                    files.push((
                        item["path"].as_str().unwrap_or("").to_string(),
                        value.into_bytes(),
                        mode,
                    ));
                }
            } else if let Some(p) = v.get("projected") {
                let mode = p["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                for source in p["sources"].as_array().into_iter().flatten() {
                    if let Some(t) = source.get("serviceAccountToken") {
                        let sa = pod["spec"]["serviceAccountName"]
                            .as_str()
                            .unwrap_or("default");
                        let token = auth::new_token();
                        self.tokens
                            .add(token.clone(), User::service_account(ns, sa));
                        files.push((
                            t["path"].as_str().unwrap_or("token").to_string(),
                            token.into_bytes(),
                            mode,
                        ));
                    } else if let Some(c) = source.get("configMap") {
                        match self.object_data(
                            ids::CONFIGMAPS,
                            ns,
                            c["name"].as_str().unwrap_or(""),
                        ) {
                            Some(data) => files
                                .extend(select_items(&data, &c["items"], mode).map_err(mount_err)?),
                            None if c["optional"] == json!(true) => {}
                            None => {
                                return Err(mount_err(format!(
                                    "configmap \"{}\" not found",
                                    c["name"].as_str().unwrap_or("")
                                )));
                            }
                        }
                    } else if let Some(s) = source.get("secret") {
                        match self.object_data(ids::SECRETS, ns, s["name"].as_str().unwrap_or("")) {
                            Some(data) => files
                                .extend(select_items(&data, &s["items"], mode).map_err(mount_err)?),
                            None if s["optional"] == json!(true) => {}
                            None => {
                                return Err(mount_err(format!(
                                    "secret \"{}\" not found",
                                    s["name"].as_str().unwrap_or("")
                                )));
                            }
                        }
                    } else if let Some(d) = source.get("downwardAPI") {
                        for item in d["items"].as_array().into_iter().flatten() {
                            let value = field_value(
                                pod,
                                item["fieldRef"]["fieldPath"].as_str().unwrap_or(""),
                            );
                            files.push((
                                item["path"].as_str().unwrap_or("").to_string(),
                                value.into_bytes(),
                                mode,
                            ));
                        }
                    }
                }
            } else {
                return Err(mount_err(
                    "this volume type is not supported by the test world's kubelet".into(),
                ));
            }
            for (path, content, mode) in files {
                if path.split('/').any(|p| p == "..") || path.starts_with('/') {
                    return Err(mount_err(format!("invalid path {path:?}")));
                }
                let file = dir.join(&path);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(&file, content).map_err(io)?;
                // Why: as the kubelet's SetVolumeOwnership does, fsGroup owns the files and may
                // read them.
                let mode = match fs_group {
                    Some(gid) => {
                        std::os::unix::fs::chown(&file, None, Some(gid)).map_err(io)?;
                        mode | 0o040
                    }
                    None => mode,
                };
                set_mode(&file, mode).map_err(io)?;
            }
            out.insert(name, dir);
        }
        Ok(out)
    }

    /// The decoded data of a Secret or ConfigMap (`data` and `binaryData`).
    fn object_data(&self, r: usize, ns: &str, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
        let o = self.world.get(r, ns, name).ok()?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out = Vec::new();
        for (k, v) in o["data"].as_object().into_iter().flatten() {
            let text = v.as_str().unwrap_or("");
            let bytes = if r == ids::SECRETS {
                b64.decode(text).unwrap_or_default()
            } else {
                text.as_bytes().to_vec()
            };
            out.push((k.clone(), bytes));
        }
        for (k, v) in o["binaryData"].as_object().into_iter().flatten() {
            out.push((
                k.clone(),
                b64.decode(v.as_str().unwrap_or("")).unwrap_or_default(),
            ));
        }
        Some(out)
    }

    /// The `podman run` arguments of one container (without the command itself).
    async fn container_args(
        &self,
        pod: &Value,
        c: &Value,
        volumes: &HashMap<String, PathBuf>,
        pod_dir: &Path,
    ) -> Result<Vec<String>, ConfigError> {
        let ns = meta_str(pod, "namespace");
        let name = c["name"].as_str().unwrap_or("");
        let mut args: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--pull=never".into(),
            "--network=host".into(),
            format!(
                "--name=kt-{}-{name}",
                &meta_str(pod, "uid")[..8.min(meta_str(pod, "uid").len())]
            ),
        ];
        // Environment.
        let mut env: Vec<(String, String)> = vec![
            ("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()),
            ("KUBERNETES_SERVICE_PORT".into(), self.api_port.to_string()),
            (
                "KUBERNETES_SERVICE_PORT_HTTPS".into(),
                self.api_port.to_string(),
            ),
            (
                "KUBERNETES_PORT".into(),
                format!("tcp://127.0.0.1:{}", self.api_port),
            ),
        ];
        for from in c["envFrom"].as_array().into_iter().flatten() {
            let prefix = from["prefix"].as_str().unwrap_or("");
            let (r, reference, kind) = if from.get("secretRef").is_some() {
                (ids::SECRETS, &from["secretRef"], "secret")
            } else {
                (ids::CONFIGMAPS, &from["configMapRef"], "configmap")
            };
            let obj_name = reference["name"].as_str().unwrap_or("");
            match self.object_data(r, ns, obj_name) {
                Some(data) => {
                    for (k, v) in data {
                        env.push((
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into_owned(),
                        ));
                    }
                }
                None if reference["optional"] == json!(true) => {}
                None => return Err(config_error(format!("{kind} \"{obj_name}\" not found"))),
            }
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().unwrap_or("").to_string();
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                match self.key_ref(ids::SECRETS, "Secret", "secret", ns, r)? {
                    Some(v) => v,
                    None => continue,
                }
            } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
                match self.key_ref(ids::CONFIGMAPS, "ConfigMap", "configmap", ns, r)? {
                    Some(v) => v,
                    None => continue,
                }
            } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                field_value(pod, path)
            } else {
                String::new()
            };
            env.push((key, value));
        }
        for (k, v) in env {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        // Security.
        let pod_sc = &pod["spec"]["securityContext"];
        let sc = &c["securityContext"];
        let pick = |field: &str| sc[field].as_i64().or_else(|| pod_sc[field].as_i64());
        let non_root = sc["runAsNonRoot"]
            .as_bool()
            .or_else(|| pod_sc["runAsNonRoot"].as_bool())
            == Some(true);
        let user = pick("runAsUser");
        let group = pick("runAsGroup");
        let pod_ref = format!(
            "pod: \"{}_{ns}({})\", container: {name}",
            meta_str(pod, "name"),
            meta_str(pod, "uid")
        );
        if non_root {
            match user {
                Some(0) => {
                    return Err(config_error(format!(
                        "container's runAsUser breaks non-root policy ({pod_ref})"
                    )));
                }
                Some(_) => {}
                None => {
                    let image_user = self.image_user(c["image"].as_str().unwrap_or("")).await;
                    let uid = image_user.split(':').next().unwrap_or("");
                    if uid.is_empty() || uid == "0" || uid == "root" {
                        return Err(config_error(format!(
                            "container has runAsNonRoot and image will run as root ({pod_ref})"
                        )));
                    }
                    if uid.parse::<u64>().is_err() {
                        return Err(config_error(format!(
                            "container has runAsNonRoot and image has non-numeric user ({uid}), cannot verify user is non-root ({pod_ref})"
                        )));
                    }
                }
            }
        }
        match (user, group) {
            (Some(u), Some(g)) => args.push(format!("--user={u}:{g}")),
            (Some(u), None) => args.push(format!("--user={u}")),
            (None, Some(g)) => args.push(format!("--user=0:{g}")),
            (None, None) => {}
        }
        if sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        {
            args.push("--cap-drop=all".into());
        }
        for cap in sc["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            args.push(format!("--cap-add={cap}"));
        }
        if sc["allowPrivilegeEscalation"] == json!(false) {
            args.push("--security-opt=no-new-privileges".into());
        }
        if sc["readOnlyRootFilesystem"] == json!(true) {
            args.push("--read-only".into());
        }
        // Mounts.
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let vname = m["name"].as_str().unwrap_or("");
            let Some(dir) = volumes.get(vname) else {
                return Err(config_error(format!(
                    "cannot find volume \"{vname}\" to mount into container \"{name}\""
                )));
            };
            let mut host = dir.clone();
            if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
                    return Err(config_error(format!("invalid subpath {sub:?}")));
                }
                host = dir.join(sub);
                if !host.exists() {
                    std::fs::create_dir_all(&host)
                        .map_err(|e| config_error(format!("subPath: {e}")))?;
                }
            }
            let ro = if m["readOnly"] == json!(true) {
                ":ro"
            } else {
                ""
            };
            args.push(format!(
                "--volume={}:{}{ro}",
                host.display(),
                m["mountPath"].as_str().unwrap_or("")
            ));
        }
        // The termination message file.
        let term_dir = pod_dir.join("termination");
        std::fs::create_dir_all(&term_dir).map_err(|e| config_error(e.to_string()))?;
        let term = term_dir.join(name);
        std::fs::write(&term, b"").map_err(|e| config_error(e.to_string()))?;
        set_mode(&term, 0o666).map_err(|e| config_error(e.to_string()))?;
        let term_path = c["terminationMessagePath"]
            .as_str()
            .unwrap_or("/dev/termination-log");
        args.push(format!("--volume={}:{term_path}", term.display()));
        if let Some(dir) = c["workingDir"].as_str() {
            args.push(format!("--workdir={dir}"));
        }
        let command: Vec<String> = strings(&c["command"]);
        let container_args: Vec<String> = strings(&c["args"]);
        if !command.is_empty() {
            args.push(format!("--entrypoint={}", Value::from(command.clone())));
        }
        args.push(c["image"].as_str().unwrap_or("").to_string());
        args.extend(container_args);
        Ok(args)
    }

    /// Resolves a secretKeyRef/configMapKeyRef (`None` for an optional miss).
    fn key_ref(
        &self,
        r: usize,
        kind: &str,
        lower: &str,
        ns: &str,
        reference: &serde_json::Map<String, Value>,
    ) -> Result<Option<String>, ConfigError> {
        let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
        let key = reference.get("key").and_then(Value::as_str).unwrap_or("");
        let optional = reference.get("optional") == Some(&json!(true));
        match self.object_data(r, ns, name) {
            None if optional => Ok(None),
            None => Err(config_error(format!("{lower} \"{name}\" not found"))),
            Some(data) => match data.into_iter().find(|(k, _)| k == key) {
                Some((_, v)) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
                None if optional => Ok(None),
                None => Err(config_error(format!(
                    "couldn't find key {key} in {kind} {ns}/{name}"
                ))),
            },
        }
    }

    /// Runs one container to its end; returns its exit code.
    async fn run_container(
        &self,
        pod: &Value,
        list: &str,
        c: &Value,
        args: &[String],
        stop: &mut watch::Receiver<bool>,
        pod_dir: &Path,
    ) -> i64 {
        let uid = meta_str(pod, "uid").to_string();
        let name = c["name"].as_str().unwrap_or("").to_string();
        let container_name = args
            .iter()
            .find_map(|a| a.strip_prefix("--name="))
            .unwrap_or("")
            .to_string();
        let log_dir = pod_dir.join("logs");
        let _ = std::fs::create_dir_all(&log_dir);
        let log_path = log_dir.join(format!("{name}.log"));
        let (done_tx, done_rx) = watch::channel(false);
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((uid.clone(), name.clone()), (log_path.clone(), done_rx));
        let mut child = match self
            .podman()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let message = format!("failed to start podman: {e}");
                self.set_waiting(pod, list, c, "RunContainerError", &message);
                self.event(pod, "Warning", "Failed", &format!("Error: {message}"));
                done_tx.send_replace(true);
                return 128;
            }
        };
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(container_name.clone());
        let started = clock::now_rfc3339();
        self.event(
            pod,
            "Normal",
            "Created",
            &format!("Created container {name}"),
        );
        self.event(
            pod,
            "Normal",
            "Started",
            &format!("Started container {name}"),
        );
        let is_main = list == "containerStatuses";
        let ready_when_running = is_main || c["restartPolicy"] == json!("Always");
        let entry_name = c["name"].clone();
        let image = c["image"].clone();
        self.update_status(pod, |s| {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut)
                && let Some(entry) = cs.iter_mut().find(|e| e["name"] == entry_name)
            {
                *entry = json!({"name": entry_name, "image": image, "imageID": image,
                    "containerID": format!("podman://{container_name}"), "ready": ready_when_running,
                    "restartCount": 0, "started": true, "state": {"running": {"startedAt": started}}});
            }
            if is_main {
                let all_running = s["containerStatuses"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().all(|e| e["state"].get("running").is_some()));
                if all_running {
                    s["phase"] = json!("Running");
                    set_condition(s, cond("Ready", true, ""));
                    set_condition(s, cond("ContainersReady", true, ""));
                }
            }
        });
        let log_file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .await;
        let (line_tx, mut line_rx) = mpsc::channel::<(String, &'static str)>(256);
        if let Some(out) = child.stdout.take() {
            let tx = line_tx.clone();
            tokio::spawn(async move { forward_lines(out, "stdout", tx).await });
        }
        if let Some(err) = child.stderr.take() {
            let tx = line_tx.clone();
            tokio::spawn(async move { forward_lines(err, "stderr", tx).await });
        }
        drop(line_tx);
        let writer = tokio::spawn(async move {
            let Ok(mut file) = log_file else { return };
            while let Some((line, stream)) = line_rx.recv().await {
                let ts = format_nanos(SystemTime::now());
                let _ = file
                    .write_all(format!("{ts} {stream} {line}\n").as_bytes())
                    .await;
                let _ = file.flush().await;
            }
        });
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30);
        let exited = tokio::select! {
            s = child.wait() => Some(s),
            r = stop.wait_for(|s| *s) => {
                drop(r);
                None
            }
        };
        let status = match exited {
            Some(s) => s,
            None => {
                let current = self
                    .world
                    .get(ids::PODS, meta_str(pod, "namespace"), meta_str(pod, "name"))
                    .ok();
                let grace = current
                    .and_then(|p| p["metadata"]["deletionGracePeriodSeconds"].as_i64())
                    .unwrap_or(grace);
                self.event(
                    pod,
                    "Normal",
                    "Killing",
                    &format!("Stopping container {name}"),
                );
                let _ = self
                    .podman()
                    .args(["stop", "-t", &grace.max(0).to_string(), &container_name])
                    .output()
                    .await;
                child.wait().await
            }
        };
        let _ = writer.await;
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&container_name);
        done_tx.send_replace(true);
        let code = status.ok().and_then(|s| s.code()).map_or(137, i64::from);
        let mut message =
            std::fs::read(pod_dir.join("termination").join(&name)).unwrap_or_default();
        message.truncate(MAX_TERMINATION_MESSAGE);
        let message = String::from_utf8_lossy(&message).into_owned();
        let finished = clock::now_rfc3339();
        let started_at = started.clone();
        self.update_status(pod, |s| {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut)
                && let Some(entry) = cs.iter_mut().find(|e| e["name"] == entry_name)
            {
                let mut terminated = json!({"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                    "startedAt": started_at, "finishedAt": finished,
                    "containerID": format!("podman://{container_name}")});
                if !message.is_empty() {
                    terminated["message"] = json!(message);
                }
                entry["state"] = json!({"terminated": terminated});
                entry["ready"] = json!(false);
                entry["started"] = json!(false);
            }
            if is_main {
                set_condition(s, cond("Ready", false, "ContainersNotReady"));
                set_condition(s, cond("ContainersReady", false, "ContainersNotReady"));
            }
        });
        code
    }

    /// The text of every container log ever written, one container after the other (by pod uid,
    /// then container name), without the timestamp and stream of each line.
    pub(crate) fn all_logs(&self) -> String {
        // Why: the map keeps every container's file, also after its pod is deleted (pod
        // directories are never removed), and only this world's: a reused `Options::dir` may
        // hold files of earlier worlds.
        let mut paths: Vec<((String, String), PathBuf)> = self
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(key, (path, _))| (key.clone(), path.clone()))
            .collect();
        paths.sort();
        let mut out = String::new();
        for (_, path) in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                out.push_str(log_text(line));
                out.push('\n');
            }
        }
        out
    }

    /// Serves `pods/log`.
    pub(crate) fn logs(&self, req: LogRequest) -> Result<mpsc::Receiver<Bytes>, ApiError> {
        let uid = meta_str(&req.pod, "uid").to_string();
        let pod_name = meta_str(&req.pod, "name").to_string();
        if req.previous {
            return Err(ApiError::BadRequest(format!(
                "previous terminated container \"{}\" in pod \"{pod_name}\" not found",
                req.container
            )));
        }
        let entry = self
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(uid, req.container.clone()))
            .cloned();
        let Some((path, mut done)) = entry else {
            let reason = ["initContainerStatuses", "containerStatuses"]
                .iter()
                .flat_map(|l| {
                    req.pod["status"][*l]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .find(|c| c["name"] == json!(req.container))
                .and_then(|c| c["state"]["waiting"]["reason"].as_str().map(str::to_string))
                .unwrap_or_else(|| "ContainerCreating".into());
            return Err(ApiError::BadRequest(format!(
                "container \"{}\" in pod \"{pod_name}\" is waiting to start: {reason}",
                req.container
            )));
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let format_line = |line: &str| -> Option<Bytes> {
                let (ts, _) = line.split_once(' ')?;
                let text = log_text(line);
                if let Some(since) = req.since
                    && clock::parse_rfc3339(ts).is_some_and(|t| t < since)
                {
                    return None;
                }
                Some(Bytes::from(if req.timestamps {
                    format!("{ts} {text}\n")
                } else {
                    format!("{text}\n")
                }))
            };
            let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
            let mut offset = text.len();
            let mut lines: Vec<Bytes> = text.lines().filter_map(format_line).collect();
            if let Some(n) = req.tail_lines {
                let skip = lines.len().saturating_sub(n);
                lines.drain(..skip);
            }
            for l in lines {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            if !req.follow {
                return;
            }
            // Why: lines are appended whole by one writer, so reading from the last offset
            // until the container ends and the file stops growing loses nothing.
            loop {
                let ended = *done.borrow();
                let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
                if text.len() > offset {
                    for l in text[offset..].lines().filter_map(format_line) {
                        if tx.send(l).await.is_err() {
                            return;
                        }
                    }
                    offset = text.len();
                }
                if ended {
                    return;
                }
                tokio::select! {
                    _ = done.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }
}

/// Stops the native sidecars and waits for them.
async fn stop_sidecars(stop: &watch::Sender<bool>, sidecars: Vec<tokio::task::JoinHandle<i64>>) {
    stop.send_replace(true);
    for s in sidecars {
        let _ = s.await;
    }
}

/// A pod condition with the status given as a bool.
fn cond(kind: &str, status: bool, reason: &str) -> Value {
    let now = clock::now_rfc3339();
    let mut c = json!({"type": kind, "status": if status { "True" } else { "False" },
        "lastProbeTime": null, "lastTransitionTime": now});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    c
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Sleeps for `d`; true when the pod is being stopped instead.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        r = stop.wait_for(|s| *s) => {
            drop(r);
            return true;
        }
    }
    *stop.borrow()
}

async fn forward_lines(
    reader: impl tokio::io::AsyncRead + Unpin,
    stream: &'static str,
    tx: mpsc::Sender<(String, &'static str)>,
) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send((line, stream)).await.is_err() {
            return;
        }
    }
}

/// The text of a stored log line (`<timestamp> <stream> <text>`).
fn log_text(line: &str) -> &str {
    let rest = line.split_once(' ').map_or("", |(_, rest)| rest);
    rest.split_once(' ').map_or("", |(_, text)| text)
}

/// RFC 3339 with nanoseconds, as the kubelet prefixes log lines.
fn format_nanos(time: SystemTime) -> String {
    let base = clock::format_rfc3339(time);
    let nanos = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{}.{nanos:09}Z", &base[..base.len() - 1])
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The files of a Secret/ConfigMap volume: every key, or the listed `items` with their modes.
fn select_items(
    data: &[(String, Vec<u8>)],
    items: &Value,
    default_mode: u32,
) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    match items.as_array() {
        None => Ok(data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), default_mode))
            .collect()),
        Some(items) => items
            .iter()
            .map(|item| {
                let key = item["key"].as_str().unwrap_or("");
                let value = data
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        format!("configmap references non-existent config key: {key}")
                    })?;
                let mode = item["mode"].as_u64().map_or(default_mode, |m| m as u32);
                Ok((
                    item["path"].as_str().unwrap_or(key).to_string(),
                    value,
                    mode,
                ))
            })
            .collect(),
    }
}

/// The value of a downward-API field path.
fn field_value(pod: &Value, path: &str) -> String {
    let bracketed = |prefix: &str| -> Option<String> {
        let rest = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(rest.to_string())
    };
    if let Some(k) = bracketed("metadata.labels") {
        return pod["metadata"]["labels"][k]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    if let Some(k) = bracketed("metadata.annotations") {
        return pod["metadata"]["annotations"][k]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    match path {
        "metadata.name" | "metadata.namespace" | "metadata.uid" => {
            meta_str(pod, &path["metadata.".len()..]).to_string()
        }
        "spec.nodeName" => NODE_NAME.to_string(),
        "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        "status.hostIP" | "status.podIP" | "status.hostIPs" | "status.podIPs" => {
            "127.0.0.1".to_string()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_fields_resolve() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n", "uid": "u", "labels": {"a": "b"}},
            "spec": {"serviceAccountName": "sa"}});
        assert_eq!(field_value(&pod, "metadata.namespace"), "n");
        assert_eq!(field_value(&pod, "metadata.labels['a']"), "b");
        assert_eq!(field_value(&pod, "spec.nodeName"), NODE_NAME);
        assert_eq!(field_value(&pod, "status.podIP"), "127.0.0.1");
    }

    #[test]
    fn items_select_keys_and_modes() {
        let data = vec![
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ];
        let all = select_items(&data, &Value::Null, 0o644).expect("all");
        assert_eq!(all.len(), 2);
        let some = select_items(
            &data,
            &json!([{"key": "b", "path": "dir/b.txt", "mode": 0o600}]),
            0o644,
        )
        .expect("items");
        assert_eq!(some, vec![("dir/b.txt".to_string(), b"2".to_vec(), 0o600)]);
        assert!(select_items(&data, &json!([{"key": "c", "path": "c"}]), 0o644).is_err());
        assert!(format_nanos(SystemTime::UNIX_EPOCH).ends_with(".000000000Z"));
    }

    #[test]
    fn stored_log_lines_give_their_text() {
        assert_eq!(log_text("2024-01-01T00:00:00.1Z stdout a b "), "a b ");
        assert_eq!(log_text("2024-01-01T00:00:00.1Z stderr "), "");
        assert_eq!(log_text("2024-01-01T00:00:00.1Z stdout"), "");
    }
}
