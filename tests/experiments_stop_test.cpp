// A stop request (src/common/stop.h, the Python module's Ctrl-C): the solvers end between products
// (and the dense method between columns) by throwing Stopped; a sweep ends between jobs, keeps every
// record it wrote, counts the job cut short as neither run nor failed, and a rerun resumes.
#include <atomic>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/stop.h"
#include "experiments/sweep.h"
#include "file_support.h"
#include "models/forward.h"
#include "models/weights.h"
#include "spectral/spectral_norm.h"

namespace lipattn::experiments {
namespace {

// A dense matrix as an operator that counts its products.
class Counted final : public LinearOperator {
 public:
  explicit Counted(MatrixD m) : m_(std::move(m)) {}
  Index input_size() const override { return m_.cols(); }
  Index output_size() const override { return m_.rows(); }
  VectorD apply(const VectorD& v) const override {
    ++applies;
    return m_ * v;
  }
  VectorD apply_transpose(const VectorD& w) const override { return m_.transpose() * w; }
  mutable std::atomic<long> applies{0};

 private:
  MatrixD m_;
};

struct ClearStop {
  ~ClearStop() { stop::clear(); }
};

TEST(StopRequest, EndsEverySolverBetweenProducts) {
  ClearStop clear;
  const MatrixD m = MatrixD::Random(30, 30);
  for (SpectralMethod method : {SpectralMethod::Dense, SpectralMethod::Lanczos, SpectralMethod::Power}) {
    SpectralOptions o;
    o.method = method;
    Counted op(m);
    // The request arrives during the solve, after the third product (or column).
    o.on_product = [](long products, double) {
      if (products == 3) stop::request();
    };
    if (method == SpectralMethod::Dense) stop::request();
    EXPECT_THROW(spectral_norm(op, o), Stopped) << to_string(method);
    EXPECT_LE(op.applies.load(), method == SpectralMethod::Dense ? 1 : 4) << to_string(method);
    stop::clear();
    o.on_product = nullptr;
    EXPECT_NEAR(spectral_norm(op, o).lipschitz, top_singular_value(m), 1e-8) << to_string(method);
  }
}

// Loading a model and its forward pass (the Python module's Model.load and Model.forward) end at the
// next tensor and the next layer; without a request the same calls run.
TEST(StopRequest, EndsAModelLoadAndAForwardPass) {
  ClearStop clear;
  const std::filesystem::path dir = testing::scratch_dir("stop-model");
  std::ofstream(dir / "tiny.json") << R"({"model_type": "gpt2", "n_embd": 8, "n_head": 2, "n_layer": 3,
                                          "n_positions": 16, "vocab_size": 20})";
  const std::string spec = "random:" + (dir / "tiny.json").string();
  stop::request();
  EXPECT_THROW(models::load_model(spec), Stopped);
  stop::clear();
  const models::ModelWeights model = models::load_model(spec);
  const std::vector<int> ids{1, 2, 3, 4};
  stop::request();
  EXPECT_THROW(models::run_forward(model, ids), Stopped);
  stop::clear();
  EXPECT_EQ(models::run_forward(model, ids).layers.size(), 3u);
}

TEST(StopRequest, EndsASweepBetweenJobsAndKeepsItsRecords) {
  ClearStop clear;
  const auto path = testing::scratch_dir("stop-sweep") / "results.jsonl";
  std::vector<Job> jobs;
  for (int i = 0; i < 12; ++i) jobs.push_back(Job{{{"i", i}}, 1});
  std::atomic<int> calls{0};
  // The fifth job asks to stop and is cut short inside (as a solve would be): four records stay.
  const Executor stop_at_five = [&](const Job& job, int) {
    if (++calls == 5) stop::request();
    stop::throw_if_requested();
    return nlohmann::json{{"i", job.spec["i"]}};
  };
  RunOptions o;
  o.progress = false;
  o.workers = 1;
  o.mode = ParallelMode::Jobs;
  {
    ResultsFile results(path.string());
    EXPECT_THROW(run_jobs(jobs, stop_at_five, results, o), Stopped);
  }
  EXPECT_EQ(testing::lines_of(path).size(), 4u);
  EXPECT_EQ(calls.load(), 5);  // no job started after the request
  stop::clear();
  ResultsFile results(path.string());
  const RunSummary s = run_jobs(jobs, stop_at_five, results, o);
  EXPECT_EQ(s.skipped, 4);
  EXPECT_EQ(s.ran, 8);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(testing::lines_of(path).size(), 12u);
}

}  // namespace
}  // namespace lipattn::experiments
