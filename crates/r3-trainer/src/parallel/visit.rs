//! The module visitors of the all-reduce: trainable parameters and gradients to and from flat `f64` vectors.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::distributed::{ReduceOperation, all_reduce};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};

/// Every trainable parameter's values, flattened in visiting order.
pub(super) struct ParamValues(pub(super) Vec<f64>);

impl ModuleVisitor for ParamValues {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            let data: Vec<f32> =
                value.inner().cast(FloatDType::F32).into_data().convert::<f32>().try_to_vec().expect("f32 weights");
            self.0.extend(data.into_iter().map(f64::from));
        }
    }
}

/// Sets every trainable parameter from a flat vector (the inverse of [`ParamValues`]), keeping its id, device,
/// dtype and `require_grad`.
pub(super) struct SetParams<'a> {
    pub(super) values: &'a [f64],
    pub(super) at: usize,
}

impl ModuleMapper for SetParams<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        if !tensor.is_require_grad() {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let shape = tensor.shape();
        let n = shape.num_elements();
        let data: Vec<f32> = self.values[self.at..self.at + n].iter().map(|&x| x as f32).collect();
        self.at += n;
        let fresh =
            Tensor::<D>::from_data(TensorData::new(data, shape), &tensor.device()).cast(tensor.dtype()).require_grad();
        Param::from_mapped_value(id, fresh, mapper)
    }
}

/// Reads the trainable parameters' gradients (zeros where this peer has none) into one f64 vector, with one
/// presence flag per trainable parameter. With `host = false` only the flags are read (burn reduces the tensors).
pub(super) struct Flatten<'a> {
    pub(super) grads: Option<&'a GradientsParams>,
    pub(super) host: bool,
    pub(super) present: Vec<f64>,
    pub(super) values: Vec<f64>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let grad = self.grads.and_then(|g| g.get::<D>(param.id));
        self.present.push(if grad.is_some() { 1.0 } else { 0.0 });
        if !self.host {
            return;
        }
        match grad {
            Some(g) => {
                let data: Vec<f32> =
                    g.cast(FloatDType::F32).into_data().convert::<f32>().try_to_vec().expect("f32 gradient data");
                self.values.extend(data.into_iter().map(f64::from));
            }
            None => self.values.extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
        }
    }
}

/// Turns the summed flat vector back into gradients on each parameter's device and dtype.
pub(super) struct Unflatten<'a> {
    pub(super) values: &'a [f64],
    pub(super) present: &'a [bool],
    pub(super) at: usize,
    pub(super) index: usize,
    pub(super) out: GradientsParams,
}

impl ModuleVisitor for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let shape = value.shape();
        let n = shape.num_elements();
        let slice = &self.values[self.at..self.at + n];
        self.at += n;
        let present = self.present[self.index];
        self.index += 1;
        if present {
            let data: Vec<f32> = slice.iter().map(|&x| x as f32).collect();
            let device = value.device().inner();
            let grad = Tensor::<D>::from_data(TensorData::new(data, shape), &device).cast(value.dtype());
            self.out.register::<D>(param.id, grad);
        }
    }
}

/// burn's collective all-reduce of every trainable parameter's gradient (zeros where this peer has none), in
/// the visiting order, which is the same on every peer.
pub(super) struct BurnReduce<'a> {
    pub(super) grads: GradientsParams,
    pub(super) devices: &'a [Device],
    pub(super) present: &'a [bool],
    pub(super) index: usize,
    pub(super) out: GradientsParams,
}

impl ModuleVisitor for BurnReduce<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let present = self.present[self.index];
        self.index += 1;
        let grad = self.grads.remove::<D>(param.id).unwrap_or_else(|| value.clone().inner().zeros_like());
        // Every peer calls the all-reduce for every trainable parameter, present anywhere or not, so that the
        // collective calls match one to one.
        let summed = all_reduce(grad, ReduceOperation::Sum, self.devices.to_vec()).resolve();
        if present {
            self.out.register::<D>(param.id, summed);
        }
    }
}
