import json, numpy as np, onnx
from tests.test_export import speaker_case, clips  # noqa
from ser import export
def test_inspect(speaker_case, tmp_path):
    model_dir, batch, speakers = speaker_case
    out = tmp_path / "e.onnx"
    export.export(model_dir, out, format="onnx")
    proto = onnx.load(str(out))
    for v in (*proto.graph.input, *proto.graph.output):
        print(v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
    d = json.loads(out.with_name("e.onnx.json").read_text())
    print(json.dumps({k: d[k] for k in ("input", "speaker_input", "output", "statistics_output")}, indent=1))
    from ser import modelio
    from ser.train import predict_proba
    m, _ = modelio.load(model_dir)
    p = predict_proba(m, batch, speakers=speakers)
    print(np.round(p, 3))
