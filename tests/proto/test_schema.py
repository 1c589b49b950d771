"""fastfeed's proto/ is wire-identical to the SDK's schema, and the checked-in classes match it."""
import pathlib
import subprocess
import sys

from google.protobuf import descriptor_pb2
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as sdk

from fastfeed.proto import fastfeed_market_v3_pb2 as ours

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto" / "fastfeed_market_v3.proto"


def _file_proto(module) -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(fd)
    return fd


def test_names_differ_so_both_load_in_one_process():
    assert ours.DESCRIPTOR.name != sdk.DESCRIPTOR.name
    assert ours.DESCRIPTOR.package != sdk.DESCRIPTOR.package


def _messages(fd):
    out = {}

    def walk(prefix, msgs):
        for m in msgs:
            out[prefix + m.name] = m
            walk(prefix + m.name + ".", m.nested_type)

    walk("", fd.message_type)
    return out


def test_every_message_field_and_enum_matches_sdk():
    mine, theirs = _file_proto(ours), _file_proto(sdk)
    ours_msgs, sdk_msgs = _messages(mine), _messages(theirs)
    assert set(ours_msgs) == set(sdk_msgs)
    for name, m in sdk_msgs.items():
        o = ours_msgs[name]
        assert o.options.map_entry == m.options.map_entry, name
        assert [d.name for d in o.oneof_decl] == [d.name for d in m.oneof_decl], name
        fields = {f.number: f for f in m.field}
        ofields = {f.number: f for f in o.field}
        assert set(fields) == set(ofields), name
        for num, f in fields.items():
            g = ofields[num]
            assert (g.name, g.type, g.label) == (f.name, f.type, f.label)
            assert g.HasField("oneof_index") == f.HasField("oneof_index"), (name, f.name)
            if f.HasField("oneof_index"):
                assert g.oneof_index == f.oneof_index
            # Type names differ only by package.
            assert g.type_name.rsplit(".", 1)[-1] == f.type_name.rsplit(".", 1)[-1]
    assert [(e.name, [(v.name, v.number) for v in e.value]) for e in mine.enum_type] == [
        (e.name, [(v.name, v.number) for v in e.value]) for e in theirs.enum_type
    ]
    assert mine.syntax == theirs.syntax == "proto3"


def test_generated_classes_match_proto_file(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}",
         f"--descriptor_set_out={tmp_path / 'set.pb'}", PROTO.name],
        check=True,
    )
    fds = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "set.pb").read_bytes())
    fresh = fds.file[0]
    # protoc records json_name; the runtime's CopyToProto leaves it out.
    for msg in _messages(fresh).values():
        for field in msg.field:
            field.ClearField("json_name")
    assert fresh == _file_proto(ours)


def test_json_names_match_sdk():
    for name, desc in sdk.DESCRIPTOR.message_types_by_name.items():
        mine = ours.DESCRIPTOR.message_types_by_name[name]
        assert [f.json_name for f in mine.fields] == [f.json_name for f in desc.fields]
