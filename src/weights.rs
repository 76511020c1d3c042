//! Where weights come from and how they become tensors: the only module that touches weight files.
//!
//! A model is named by a hub repo id (fetched and cached through `hf-hub`) or a local folder in
//! diffusers layout (`unet/`, `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`). Parameters are
//! handed to the model code through a candle `VarBuilder` backed by [`ParamStore`], which
//! - reads tensors from safetensors files (any of f32/f16/bf16) into the compute dtype, checking
//!   each shape against the one the config implies and naming file and tensor when they differ;
//! - or, with no file, initialises them from a seeded generator of ours;
//! - and, when trainable, makes every parameter a `Var` registered under its checkpoint name, so the
//!   whole model can be optimised and saved back with names diffusers reads.

use crate::runtime::{rng, Rng64};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};
use rand::Rng;
use rand_distr::StandardNormal;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A model named on the command line: a local folder or a hub repository.
#[derive(Debug, Clone)]
pub enum ModelSource {
    Local(PathBuf),
    Hub { repo: String, revision: String },
}

impl ModelSource {
    /// An existing directory is a local folder; `owner/name` (optionally `@revision`) is a hub id.
    pub fn parse(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(ModelSource::Local(path.to_path_buf()));
        }
        let (repo, revision) = match spec.split_once('@') {
            Some((r, v)) => (r, v),
            None => (spec, "main"),
        };
        let looks_like_repo = repo.split('/').count() == 2
            && !repo.starts_with('.')
            && !repo.starts_with('/')
            && repo.split('/').all(|p| !p.is_empty());
        if !looks_like_repo {
            bail!(
                "`{spec}` is neither an existing folder nor a hub repo id of the form owner/name"
            );
        }
        Ok(ModelSource::Hub {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            ModelSource::Local(p) => format!("folder {}", p.display()),
            ModelSource::Hub { repo, revision } => format!("hub repo {repo}@{revision}"),
        }
    }

    /// Path of `file` (relative, e.g. `unet/config.json`), downloading it into the hf-hub cache when
    /// needed. With `HF_HUB_OFFLINE=1` only the cache is consulted.
    pub fn file(&self, file: &str) -> Result<PathBuf> {
        match self {
            ModelSource::Local(dir) => {
                let p = dir.join(file);
                if p.is_file() {
                    Ok(p)
                } else {
                    bail!(
                        "{} has no `{file}`: a diffusers-layout folder needs unet/, vae/, \
                         text_encoder/, tokenizer/ and scheduler/ (see `rlhf-t2i init-tiny` for an example)",
                        self.describe()
                    )
                }
            }
            ModelSource::Hub { repo, revision } => hub_file(repo, revision, file),
        }
    }

    /// The first of `candidates` that exists (e.g. plain and `.fp16` safetensors variants).
    pub fn first_file(&self, candidates: &[&str]) -> Result<PathBuf> {
        let mut last_err = None;
        for c in candidates {
            match self.file(c) {
                Ok(p) => return Ok(p),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no candidate files given")))
    }

    pub fn has_file(&self, file: &str) -> bool {
        match self {
            ModelSource::Local(dir) => dir.join(file).is_file(),
            ModelSource::Hub { .. } => self.file(file).is_ok(),
        }
    }
}

fn hub_file(repo: &str, revision: &str, file: &str) -> Result<PathBuf> {
    use hf_hub::{Cache, Repo, RepoType};
    let hub_repo = Repo::with_revision(repo.to_string(), RepoType::Model, revision.to_string());
    if let Some(p) = Cache::from_env().repo(hub_repo.clone()).get(file) {
        return Ok(p);
    }
    let offline = std::env::var("HF_HUB_OFFLINE")
        .map(|v| v == "1" || v == "true")
        .unwrap_or(false);
    let fix = format!(
        "download it once with network access (it is cached under $HF_HOME), or pass a local \
         diffusers-layout folder instead, e.g. `--model /path/to/{}`",
        repo.rsplit('/').next().unwrap_or(repo)
    );
    if offline {
        bail!("hub repo {repo}@{revision}: `{file}` is not in the local cache and HF_HUB_OFFLINE is set; {fix}");
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .with_context(|| format!("could not set up the hub client for {repo}"))?;
    api.repo(hub_repo)
        .get(file)
        .map_err(|e| anyhow!("hub repo {repo}@{revision}: could not fetch `{file}`: {e}; {fix}"))
}

/// Read a safetensors file into CPU tensors, keeping the file's dtype.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("could not read safetensors file {}", path.display()))
}

/// Write named tensors to a safetensors file atomically (temp file + rename).
pub fn save_safetensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("weights"),
        std::process::id()
    ));
    let cpu: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&cpu, &tmp)
        .with_context(|| format!("could not write {}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("could not move weights into {}", path.display()))?;
    Ok(())
}

/// Whether built parameters are trainable `Var`s or plain (frozen) tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Trainable,
    Frozen,
    /// Only the parameters whose names contain one of these are `Var`s; the others are plain
    /// tensors, so a backward pass computes no gradient for them (`finetune --trainable`).
    TrainableOnly(Vec<String>),
}

impl Mode {
    /// Every parameter trainable (`None`), or only those whose names contain a pattern.
    pub fn trainable(patterns: Option<&[String]>) -> Mode {
        match patterns {
            None => Mode::Trainable,
            Some(p) => Mode::TrainableOnly(p.to_vec()),
        }
    }

    /// Whether the parameter `name` is built as a trainable `Var` in this mode.
    pub fn trains(&self, name: &str) -> bool {
        match self {
            Mode::Trainable => true,
            Mode::Frozen => false,
            Mode::TrainableOnly(p) => p.iter().any(|p| name.contains(p.as_str())),
        }
    }
}

struct StoreInner {
    /// Tensors read from the weight file, or `None` to initialise from `rng`.
    source: Option<HashMap<String, Tensor>>,
    origin: String,
    mode: Mode,
    varmap: VarMap,
    frozen: Mutex<HashMap<String, Tensor>>,
    used: Mutex<BTreeSet<String>>,
    rng: Mutex<Rng64>,
}

/// The parameters of one model component, shared between the `VarBuilder` that builds the model
/// and the code that later trains, inspects or saves it.
#[derive(Clone)]
pub struct ParamStore {
    inner: Arc<StoreInner>,
    dtype: DType,
    device: Device,
}

impl ParamStore {
    /// Parameters read from `file` (a safetensors file); `origin` names the model for errors.
    pub fn from_file(
        file: &Path,
        origin: &str,
        mode: Mode,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let tensors = read_safetensors(file)?;
        Ok(Self::build(
            Some(tensors),
            format!("{} ({origin})", file.display()),
            mode,
            0,
            dtype,
            device,
        ))
    }

    /// Parameters initialised from a seeded generator (tiny models, fresh heads).
    pub fn random(seed: u64, origin: &str, mode: Mode, dtype: DType, device: &Device) -> Self {
        Self::build(None, origin.to_string(), mode, seed, dtype, device)
    }

    fn build(
        source: Option<HashMap<String, Tensor>>,
        origin: String,
        mode: Mode,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Self {
        let inner = StoreInner {
            source,
            origin,
            mode,
            varmap: VarMap::new(),
            frozen: Mutex::new(HashMap::new()),
            used: Mutex::new(BTreeSet::new()),
            rng: Mutex::new(rng(seed)),
        };
        Self {
            inner: Arc::new(inner),
            dtype,
            device: device.clone(),
        }
    }

    pub fn var_builder(&self) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), self.dtype, self.device.clone())
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trainable variables (empty when frozen).
    pub fn varmap(&self) -> &VarMap {
        &self.inner.varmap
    }

    /// Every parameter by checkpoint name, sorted: the trainable and the frozen ones.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = lock(self.inner.varmap.data())
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        out.extend(
            lock(&self.inner.frozen)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The trainable parameters by checkpoint name, sorted.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut out: Vec<(String, Var)> = lock(self.inner.varmap.data())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Tensors in the file that the model did not ask for (after building).
    pub fn unused(&self) -> Vec<String> {
        let used = lock(&self.inner.used);
        match &self.inner.source {
            Some(src) => {
                let mut v: Vec<String> =
                    src.keys().filter(|k| !used.contains(*k)).cloned().collect();
                v.sort();
                v
            }
            None => vec![],
        }
    }

    /// Warn about unused tensors, ignoring buffers that checkpoints carry but models recompute.
    pub fn warn_unused(&self) {
        let unused: Vec<String> = self
            .unused()
            .into_iter()
            .filter(|k| !k.ends_with("position_ids"))
            .collect();
        if !unused.is_empty() {
            eprintln!(
                "warning: {} tensors in {} are not used by the model: {}{}",
                unused.len(),
                self.inner.origin,
                unused
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if unused.len() > 5 { ", ..." } else { "" }
            );
        }
    }

    /// Save every parameter under its checkpoint name in `dtype`.
    pub fn save(&self, path: &Path, dtype: DType) -> Result<()> {
        let tensors: HashMap<String, Tensor> = self
            .named_tensors()
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(dtype)?)))
            .collect::<Result<_>>()?;
        save_safetensors(&tensors, path)
    }

    fn init_tensor(&self, shape: &Shape, init: Init) -> candle_core::Result<Tensor> {
        let dims = shape.dims();
        let n = shape.elem_count();
        let mut r = lock(&self.inner.rng);
        let data: Vec<f32> = match init {
            Init::Const(c) => vec![c as f32; n],
            Init::Randn { mean, stdev } => (0..n)
                .map(|_| mean as f32 + stdev as f32 * r.sample::<f32, _>(StandardNormal))
                .collect(),
            Init::Uniform { lo, up } => (0..n)
                .map(|_| r.random_range(lo as f32..up as f32))
                .collect(),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let fan = fan.for_shape(shape) as f64;
                let gain = non_linearity.gain();
                let std = gain / fan.max(1.0).sqrt();
                match dist {
                    candle_nn::init::NormalOrUniform::Normal => (0..n)
                        .map(|_| (std as f32) * r.sample::<f32, _>(StandardNormal))
                        .collect(),
                    candle_nn::init::NormalOrUniform::Uniform => {
                        let b = (3f64.sqrt() * std) as f32;
                        (0..n).map(|_| r.random_range(-b..b)).collect()
                    }
                }
            }
        };
        Tensor::from_vec(data, dims, &Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)
    }

    fn register(&self, name: &str, t: Tensor) -> candle_core::Result<Tensor> {
        if self.inner.mode.trains(name) {
            let var = Var::from_tensor(&t)?;
            let out = var.as_tensor().clone();
            lock(self.inner.varmap.data()).insert(name.to_string(), var);
            Ok(out)
        } else {
            lock(&self.inner.frozen).insert(name.to_string(), t.clone());
            Ok(t)
        }
    }

    fn existing(&self, name: &str) -> Option<Tensor> {
        if self.inner.mode.trains(name) {
            lock(self.inner.varmap.data())
                .get(name)
                .map(|v| v.as_tensor().clone())
        } else {
            lock(&self.inner.frozen).get(name).cloned()
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl candle_nn::var_builder::SimpleBackend for ParamStore {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Some(t) = self.existing(name) {
            if t.shape() != &s {
                candle_core::bail!(
                    "parameter `{name}` requested twice with shapes {:?} and {s:?}",
                    t.shape()
                );
            }
            return Ok(t);
        }
        let t = match &self.inner.source {
            Some(src) => {
                let t = src.get(name).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "tensor `{name}` (shape {s:?}) is missing from {}: the file does not match the \
                         architecture in its config.json",
                        self.inner.origin
                    ))
                })?;
                if t.shape() != &s {
                    candle_core::bail!(
                        "tensor `{name}` in {} has shape {:?}, but its config.json implies {:?}: the \
                         weights and the config do not belong together",
                        self.inner.origin,
                        t.dims(),
                        s.dims()
                    );
                }
                lock(&self.inner.used).insert(name.to_string());
                t.to_dtype(dtype)?.to_device(dev)?
            }
            None => self.init_tensor(&s, h)?,
        };
        self.register(name, t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        if let Some(t) = self.existing(name) {
            return Ok(t);
        }
        match &self.inner.source {
            Some(src) => {
                let t = src.get(name).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "tensor `{name}` is missing from {}",
                        self.inner.origin
                    ))
                })?;
                lock(&self.inner.used).insert(name.to_string());
                let t = t.to_dtype(dtype)?.to_device(dev)?;
                self.register(name, t)
            }
            None => candle_core::bail!("tensor `{name}` has no shape to initialise it with"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        match &self.inner.source {
            Some(src) => src.contains_key(name),
            None => self.existing(name).is_some(),
        }
    }
}

/// Read a component's `config.json`-style file into a serde config, naming the file on error.
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid config", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sources() {
        assert!(matches!(
            ModelSource::parse("owner/name").unwrap(),
            ModelSource::Hub { .. }
        ));
        match ModelSource::parse("owner/name@v2").unwrap() {
            ModelSource::Hub { revision, .. } => assert_eq!(revision, "v2"),
            _ => panic!("expected hub"),
        }
        assert!(ModelSource::parse("./no/such/folder").is_err());
        assert!(matches!(
            ModelSource::parse(".").unwrap(),
            ModelSource::Local(_)
        ));
    }

    #[test]
    fn seeded_init_is_reproducible_and_trainable() {
        let a = ParamStore::random(3, "t", Mode::Trainable, DType::F32, &Device::Cpu);
        let b = ParamStore::random(3, "t", Mode::Trainable, DType::F32, &Device::Cpu);
        let la = candle_nn::linear(4, 5, a.var_builder().pp("l")).unwrap();
        let lb = candle_nn::linear(4, 5, b.var_builder().pp("l")).unwrap();
        let wa = la.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let wb = lb.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(wa, wb);
        assert!(wa.iter().any(|v| *v != 0.0));
        let names: Vec<String> = a.named_vars().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, vec!["l.bias".to_string(), "l.weight".to_string()]);
    }

    #[test]
    fn only_the_named_parameters_train_and_get_gradients() {
        use candle_nn::Module;
        let mode = Mode::trainable(Some(&["attn".to_string()]));
        let store = ParamStore::random(5, "t", mode, DType::F32, &Device::Cpu);
        let vb = store.var_builder();
        let frozen = candle_nn::linear(3, 3, vb.pp("conv")).unwrap();
        let trained = candle_nn::linear(3, 2, vb.pp("attn")).unwrap();
        let names = |v: Vec<String>| v.join(" ");
        assert_eq!(
            names(store.named_vars().into_iter().map(|(k, _)| k).collect()),
            "attn.bias attn.weight"
        );
        // Every parameter is still there to save.
        assert_eq!(
            names(store.named_tensors().into_iter().map(|(k, _)| k).collect()),
            "attn.bias attn.weight conv.bias conv.weight"
        );
        let x = Tensor::ones((4, 3), DType::F32, &Device::Cpu).unwrap();
        let loss = trained
            .forward(&frozen.forward(&x).unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        assert!(grads.get(trained.weight()).is_some());
        assert!(
            grads.get(frozen.weight()).is_none() && grads.get(frozen.bias().unwrap()).is_none()
        );
        assert!(!frozen.weight().is_variable() && trained.weight().is_variable());
    }
}
