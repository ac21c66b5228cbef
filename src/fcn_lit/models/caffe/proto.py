"""The part of Caffe's ``caffe.proto`` (BVLC/caffe, src/caffe/proto/caffe.proto) that a release
FCN's ``.caffemodel`` and prototxt need, as protobuf message classes built from descriptors at
import. Names, types and field numbers are Caffe's own; fields left out here (solver settings,
fillers, data sources, ...) are skipped by protobuf's parser, and nothing in a file can run code."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
OPTIONAL, REPEATED = F.LABEL_OPTIONAL, F.LABEL_REPEATED
SCALARS = {"string": F.TYPE_STRING, "int32": F.TYPE_INT32, "uint32": F.TYPE_UINT32, "int64": F.TYPE_INT64,
           "float": F.TYPE_FLOAT, "double": F.TYPE_DOUBLE, "bool": F.TYPE_BOOL}

# message: {enum name: {value name: number}}
ENUMS = {
    "EltwiseParameter": {"EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2}},
    "LRNParameter": {"NormRegion": {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1}},
    "PoolingParameter": {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}, "RoundMode": {"CEIL": 0, "FLOOR": 1}},
    "V1LayerParameter": {"LayerType": {
        "NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3, "CONTRASTIVE_LOSS": 37,
        "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6, "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7,
        "ELTWISE": 25, "EXP": 38, "FLATTEN": 8, "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28, "IM2COL": 11,
        "IMAGE_DATA": 12, "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15, "MEMORY_DATA": 29,
        "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26, "RELU": 18, "SIGMOID": 19,
        "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20, "SOFTMAX_LOSS": 21, "SPLIT": 22,
        "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31}},
}

# The fields caffe.proto declares [packed = true] (the parser reads either encoding anyway).
PACKED = {"BlobShape": ("dim",), "BlobProto": ("data", "double_data")}
# message: [(field, number, type (a scalar, a message or "Message.Enum"), repeated, default)]
MESSAGES = {
    "BlobShape": [("dim", 1, "int64", True, None)],
    "BlobProto": [
        ("shape", 7, "BlobShape", False, None), ("data", 5, "float", True, None),
        ("double_data", 8, "double", True, None), ("num", 1, "int32", False, None),
        ("channels", 2, "int32", False, None), ("height", 3, "int32", False, None), ("width", 4, "int32", False, None),
    ],
    "NetParameter": [
        ("name", 1, "string", False, None), ("input", 3, "string", True, None),
        ("input_shape", 8, "BlobShape", True, None), ("input_dim", 4, "int32", True, None),
        ("layer", 100, "LayerParameter", True, None), ("layers", 2, "V1LayerParameter", True, None),
    ],
    "LayerParameter": [
        ("name", 1, "string", False, None), ("type", 2, "string", False, None), ("bottom", 3, "string", True, None),
        ("top", 4, "string", True, None), ("blobs", 7, "BlobProto", True, None),
        ("concat_param", 104, "ConcatParameter", False, None),
        ("convolution_param", 106, "ConvolutionParameter", False, None),
        ("crop_param", 144, "CropParameter", False, None), ("eltwise_param", 110, "EltwiseParameter", False, None),
        ("inner_product_param", 117, "InnerProductParameter", False, None),
        ("lrn_param", 118, "LRNParameter", False, None), ("pooling_param", 121, "PoolingParameter", False, None),
        ("relu_param", 123, "ReLUParameter", False, None), ("scale_param", 142, "ScaleParameter", False, None),
    ],
    "V1LayerParameter": [
        ("bottom", 2, "string", True, None), ("top", 3, "string", True, None), ("name", 4, "string", False, None),
        ("type", 5, "V1LayerParameter.LayerType", False, None), ("blobs", 6, "BlobProto", True, None),
        ("concat_param", 9, "ConcatParameter", False, None),
        ("convolution_param", 10, "ConvolutionParameter", False, None),
        ("eltwise_param", 24, "EltwiseParameter", False, None),
        ("inner_product_param", 17, "InnerProductParameter", False, None),
        ("lrn_param", 18, "LRNParameter", False, None), ("pooling_param", 19, "PoolingParameter", False, None),
        ("relu_param", 30, "ReLUParameter", False, None),
    ],
    "ConcatParameter": [("axis", 2, "int32", False, "1"), ("concat_dim", 1, "uint32", False, "1")],
    "ConvolutionParameter": [
        ("num_output", 1, "uint32", False, None), ("bias_term", 2, "bool", False, "true"),
        ("pad", 3, "uint32", True, None), ("kernel_size", 4, "uint32", True, None),
        ("stride", 6, "uint32", True, None), ("dilation", 18, "uint32", True, None),
        ("pad_h", 9, "uint32", False, "0"), ("pad_w", 10, "uint32", False, "0"),
        ("kernel_h", 11, "uint32", False, None), ("kernel_w", 12, "uint32", False, None),
        ("stride_h", 13, "uint32", False, None), ("stride_w", 14, "uint32", False, None),
        ("group", 5, "uint32", False, "1"), ("axis", 16, "int32", False, "1"),
    ],
    "CropParameter": [("axis", 1, "int32", False, "2"), ("offset", 2, "uint32", True, None)],
    "EltwiseParameter": [
        ("operation", 1, "EltwiseParameter.EltwiseOp", False, "SUM"), ("coeff", 2, "float", True, None),
    ],
    "InnerProductParameter": [
        ("num_output", 1, "uint32", False, None), ("bias_term", 2, "bool", False, "true"),
        ("axis", 5, "int32", False, "1"), ("transpose", 6, "bool", False, "false"),
    ],
    "LRNParameter": [
        ("local_size", 1, "uint32", False, "5"), ("alpha", 2, "float", False, "1"), ("beta", 3, "float", False, "0.75"),
        ("norm_region", 4, "LRNParameter.NormRegion", False, "ACROSS_CHANNELS"), ("k", 5, "float", False, "1"),
    ],
    "PoolingParameter": [
        ("pool", 1, "PoolingParameter.PoolMethod", False, "MAX"), ("pad", 4, "uint32", False, "0"),
        ("pad_h", 9, "uint32", False, "0"), ("pad_w", 10, "uint32", False, "0"),
        ("kernel_size", 2, "uint32", False, None), ("kernel_h", 5, "uint32", False, None),
        ("kernel_w", 6, "uint32", False, None), ("stride", 3, "uint32", False, "1"),
        ("stride_h", 7, "uint32", False, None), ("stride_w", 8, "uint32", False, None),
        ("global_pooling", 12, "bool", False, "false"),
        ("round_mode", 13, "PoolingParameter.RoundMode", False, "CEIL"),
    ],
    "ReLUParameter": [("negative_slope", 1, "float", False, "0")],
    "ScaleParameter": [
        ("axis", 1, "int32", False, "1"), ("num_axes", 2, "int32", False, "1"),
        ("bias_term", 4, "bool", False, "false"),
    ],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="fcn_lit_caffe.proto", package="caffe", syntax="proto2")
    for name, fields in MESSAGES.items():
        message = proto.message_type.add(name=name)
        for enum_name, values in ENUMS.get(name, {}).items():
            enum = message.enum_type.add(name=enum_name)
            for value, number in values.items():
                enum.value.add(name=value, number=number)
        for field, number, kind, repeated, default in fields:
            spec = message.field.add(name=field, number=number, label=REPEATED if repeated else OPTIONAL)
            if kind in SCALARS:
                spec.type = SCALARS[kind]
                if repeated and field in PACKED.get(name, ()):
                    spec.options.packed = True
            else:
                spec.type = F.TYPE_ENUM if "." in kind else F.TYPE_MESSAGE
                spec.type_name = f".caffe.{kind}"
            if default is not None:
                spec.default_value = default
    return proto


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())
NetParameter = message_factory.GetMessageClass(_pool.FindMessageTypeByName("caffe.NetParameter"))
V1LayerParameter = message_factory.GetMessageClass(_pool.FindMessageTypeByName("caffe.V1LayerParameter"))
