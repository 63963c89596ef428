// Tests for precis/io/checkpoint.hpp: single files, model.safetensors directories and sharded
// index directories open; every inconsistency between an index and its shards is a
// format_error naming the index, the shard and the tensor; config.json dtype strings parse into
// dtype codes with "auto"/missing kept distinct.
#include <string>  // std::string
#include <vector>  // std::vector

#include <catch2/catch.hpp>   // TEST_CASE, REQUIRE
#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/io/checkpoint.hpp>          // Checkpoint, parse_config_dtype
#include <precis/io/load.hpp>                // load
#include <precis/io/safetensors_writer.hpp>  // SafetensorsWriter

#include "io_test_support.hpp"  // TempDir, write_text

using namespace precis;
using io::Checkpoint;
using io::SafetensorsWriter;
using Catch::Matchers::Contains;

namespace {

Tensor<f32, 1> values(index_t n, float start) {
  Tensor<f32, 1> t({n});
  for (index_t i = 0; i < n; ++i) t.data()[i] = start + static_cast<float>(i);
  return t;
}

/// shard-1 holds a, b; shard-2 holds c. `index` is the weight_map JSON.
void write_sharded(const test::TempDir& dir, std::string_view index) {
  SafetensorsWriter s1;
  s1.add("a", values(2, 10.0f));
  s1.add("b", values(3, 20.0f));
  s1.write(dir / "model-00001-of-00002.safetensors");
  SafetensorsWriter s2;
  s2.add("c", values(4, 30.0f));
  s2.write(dir / "model-00002-of-00002.safetensors");
  test::write_text(dir / "model.safetensors.index.json", index);
}

constexpr std::string_view good_index = R"({
  "metadata": {"total_size": 36},
  "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                 "c": "model-00002-of-00002.safetensors"}})";

}  // namespace

TEST_CASE("Checkpoint opens a single file and a model.safetensors directory", "[io][checkpoint]") {
  test::TempDir dir;
  SafetensorsWriter w;
  w.add("x", values(3, 1.0f));
  w.write(dir / "model.safetensors");

  const Checkpoint file = Checkpoint::open(dir / "model.safetensors");
  REQUIRE(file.files().size() == 1);
  REQUIRE_FALSE(file.config().has_value());
  const Checkpoint d = Checkpoint::open(dir.path());
  REQUIRE(d.tensor_names() == std::vector<std::string>{"x"});
  REQUIRE(io::load<f32, 1>(d.tensor("x"))(2) == 3.0f);
  REQUIRE(d.config_dtype().kind == io::config_dtype_kind::missing);
  REQUIRE_THROWS_WITH(d.tensor("y"), Contains("no tensor named 'y'") && Contains(dir.path().string()) &&
                                         Contains("model.safetensors"));
}

TEST_CASE("Checkpoint opens a sharded directory and finds tensors in their shards", "[io][checkpoint]") {
  test::TempDir dir;
  write_sharded(dir, good_index);
  const Checkpoint c = Checkpoint::open(dir.path());
  REQUIRE(c.files().size() == 2);
  REQUIRE(c.tensor_names() == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(c.tensors().size() == 3);
  REQUIRE(io::load<f32, 1>(c.tensor("b"), {3})(1) == 21.0f);
  REQUIRE(io::load<f32, 1>(c.tensor("c"), {4})(3) == 33.0f);
  REQUIRE_THAT(c.tensor("c").source(), Contains("model-00002-of-00002.safetensors"));
  REQUIRE_THROWS_WITH(c.tensor("d"), Contains("no tensor named 'd'") &&
                                         Contains("model-00001-of-00002.safetensors") &&
                                         Contains("model-00002-of-00002.safetensors"));
}

TEST_CASE("Checkpoint rejects index/shard inconsistencies, naming index, shard and tensor", "[io][checkpoint]") {
  test::TempDir dir;
  const auto rejects = [&](std::string_view index, std::initializer_list<std::string_view> parts) {
    write_sharded(dir, index);
    try {
      (void)Checkpoint::open(dir.path());
      FAIL("accepted an inconsistent sharded checkpoint");
    } catch (const format_error& e) {
      INFO(e.what());
      CHECK_THAT(e.what(), Contains("model.safetensors.index.json"));
      for (auto p : parts) CHECK_THAT(e.what(), Contains(std::string(p)));
    }
  };
  SECTION("weight_map names a shard that does not exist") {
    rejects(R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                               "c": "model-00003-of-00002.safetensors"}})",
            {"weight_map entry 'c'", "shard 'model-00003-of-00002.safetensors'", "does not exist"});
  }
  SECTION("an indexed tensor is not in its shard") {
    rejects(R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                               "c": "model-00002-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}})",
            {"tensor 'z'", "has no such tensor"});
  }
  SECTION("an indexed tensor is stored in another shard") {
    rejects(R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                               "c": "model-00001-of-00002.safetensors", "x": "model-00002-of-00002.safetensors"}})",
            {"tensor 'c'", "indexed in shard 'model-00001-of-00002.safetensors'", "stored in"});
  }
  SECTION("a shard holds a tensor the index does not list") {
    rejects(R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})",
            {"holds tensor 'b'", "does not list"});
  }
  SECTION("no weight_map, or a weight_map value that is not a file name") {
    rejects(R"({"metadata": {}})", {"no \"weight_map\" object"});
    rejects(R"({"weight_map": {"a": 3}})", {"weight_map entry 'a' must be a file name"});
    rejects(R"({"weight_map": {"a": "../model-00001-of-00002.safetensors"}})", {"is not a file name"});
    rejects(R"({"weight_map": {"a": "/etc/passwd"}})", {"is not a file name"});
  }
  SECTION("index that is not JSON") { rejects("{\"weight_map\": ", {"not valid JSON"}); }
}

TEST_CASE("Checkpoint rejects a tensor stored in two shards", "[io][checkpoint]") {
  test::TempDir dir;
  SafetensorsWriter s1;
  s1.add("a", values(2, 0.0f));
  s1.write(dir / "s1.safetensors");
  SafetensorsWriter s2;
  s2.add("a", values(2, 5.0f));
  s2.add("b", values(1, 0.0f));
  s2.write(dir / "s2.safetensors");
  test::write_text(dir / "model.safetensors.index.json",
                   R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  REQUIRE_THROWS_WITH(Checkpoint::open(dir.path()),
                      Contains("tensor 'a' is stored in both") && Contains("s1.safetensors") &&
                          Contains("s2.safetensors"));
}

TEST_CASE("Checkpoint directories need exactly one of model.safetensors and the index", "[io][checkpoint]") {
  test::TempDir dir;
  REQUIRE_THROWS_WITH(Checkpoint::open(dir.path()), Contains("has neither model.safetensors nor"));
  REQUIRE_THROWS_AS(Checkpoint::open(dir / "missing"), io_error);
  write_sharded(dir, good_index);
  SafetensorsWriter w;
  w.add("a", values(1, 0.0f));
  w.write(dir / "model.safetensors");
  REQUIRE_THROWS_WITH(Checkpoint::open(dir.path()), Contains("has both") && Contains("ambiguous"));
}

TEST_CASE("config.json torch_dtype / dtype parse into dtype codes", "[io][checkpoint][config]") {
  using K = io::config_dtype_kind;
  const auto parse = [](const char* text) { return io::parse_config_dtype(nlohmann::json::parse(text), "config.json"); };
  REQUIRE(parse(R"({"torch_dtype": "float32"})").dtype == dtype_code::f32);
  REQUIRE(parse(R"({"torch_dtype": "bfloat16"})").dtype == dtype_code::bf16);
  REQUIRE(parse(R"({"torch_dtype": "float16"})").dtype == dtype_code::f16);
  REQUIRE(parse(R"({"dtype": "bfloat16"})").key == "dtype");
  REQUIRE(parse(R"({"torch_dtype": "bfloat16", "dtype": "bfloat16"})").kind == K::explicit_);
  REQUIRE(parse(R"({"torch_dtype": "auto"})").kind == K::automatic);
  REQUIRE_FALSE(parse(R"({"torch_dtype": "auto"})").dtype.has_value());
  REQUIRE(parse(R"({})").kind == K::missing);
  REQUIRE(parse(R"({"torch_dtype": null})").kind == K::missing);
  REQUIRE_THROWS_AS(parse(R"({"torch_dtype": "float8"})"), config_error);
  REQUIRE_THROWS_WITH(parse(R"({"torch_dtype": "torch.bfloat16"})"),
                      Contains("\"torch_dtype\" is \"torch.bfloat16\"") && Contains("expected one of"));
  REQUIRE_THROWS_WITH(parse(R"({"torch_dtype": 16})"), Contains("must be a string"));
  REQUIRE_THROWS_WITH(parse(R"({"torch_dtype": "float32", "dtype": "bfloat16"})"),
                      Contains("torch_dtype \"float32\" and dtype \"bfloat16\" disagree"));
  REQUIRE_THROWS_AS(parse(R"([1])"), config_error);

  // Through a checkpoint directory.
  test::TempDir dir;
  SafetensorsWriter w;
  w.add("x", values(1, 0.0f));
  w.write(dir / "model.safetensors");
  test::write_text(dir / "config.json", R"({"torch_dtype": "float16", "num_hidden_layers": 1})");
  const Checkpoint c = Checkpoint::open(dir.path());
  REQUIRE(c.config_dtype().dtype == dtype_code::f16);
  REQUIRE(c.config()->at("num_hidden_layers") == 1);
  test::write_text(dir / "config.json", "{not json");
  REQUIRE_THROWS_WITH(Checkpoint::open(dir.path()), Contains("config.json") && Contains("not valid JSON"));
}
