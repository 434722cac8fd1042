#include "attention/layer.h"

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

void LayerSpec::validate() const {
  attention.validate();
  const Index d = attention.input_dim();
  if (pre_norm && pre_norm->gamma.size() != d)
    throw InputError(fmt::format("tensor 'pre_norm.weight' has {} entries, the attention input width is {}",
                                 pre_norm->gamma.size(), d));
  if (residual && attention.output_dim() != d)
    throw InputError(fmt::format("the residual needs the attention output width ({}) to equal its input width ({})",
                                 attention.output_dim(), d));
  if (post_norm && post_norm->gamma.size() != attention.output_dim())
    throw InputError(fmt::format("tensor 'post_norm.weight' has {} entries, the attention output width is {}",
                                 post_norm->gamma.size(), attention.output_dim()));
}

std::string LayerSpec::describe() const {
  std::string s;
  if (pre_norm) s += pre_norm->kind == NormKind::LayerNorm ? "layernorm → " : "rmsnorm → ";
  s += fmt::format("attention(H={}{}{})", attention.heads, attention.causal ? ", causal" : "",
                   attention.w_o.size() ? ", W_O" : "");
  if (residual) s += " + residual";
  if (post_norm) s += post_norm->kind == NormKind::LayerNorm ? " → layernorm" : " → rmsnorm";
  return s;
}

template <class T>
MapPtr<T> assemble_layer(const LayerSpec& spec, MapPtr<T> attention) {
  std::vector<MapPtr<T>> maps;
  if (spec.pre_norm) maps.push_back(std::make_shared<Norm<T>>(*spec.pre_norm));
  if (spec.residual) {
    // The residual adds the layer's own input X, so it wraps the pre-norm too: Y = X + attn(norm(X)).
    MapPtr<T> inner = maps.empty() ? attention
                                   : std::make_shared<Chain<T>>(std::vector<MapPtr<T>>{maps[0], attention});
    maps.clear();
    maps.push_back(std::make_shared<Residual<T>>(inner));
  } else {
    maps.push_back(attention);
  }
  if (spec.post_norm) maps.push_back(std::make_shared<Norm<T>>(*spec.post_norm));
  if (maps.size() == 1) return maps[0];
  return std::make_shared<Chain<T>>(std::move(maps));
}

template <class T>
MapPtr<T> build_map(const LayerSpec& spec, const AttentionMemory& memory) {
  spec.validate();
  return assemble_layer<T>(spec, std::make_shared<MultiHeadAttention<T>>(spec.attention, memory));
}

template MapPtr<double> assemble_layer<double>(const LayerSpec&, MapPtr<double>);
template MapPtr<float> assemble_layer<float>(const LayerSpec&, MapPtr<float>);
template MapPtr<double> build_map<double>(const LayerSpec&, const AttentionMemory&);
template MapPtr<float> build_map<float>(const LayerSpec&, const AttentionMemory&);

}  // namespace lipattn
