package model

// qwen2 is Alibaba's Qwen2 / Qwen2.5: a Llama block whose q, k and v
// projections always carry a bias (config.json has no attention_bias field
// for it). The output projection has none.
//
//	model.layers.%d.self_attn.q_proj.bias  [heads*head_dim]
//	model.layers.%d.self_attn.k_proj.bias  [kv_heads*head_dim]
//	model.layers.%d.self_attn.v_proj.bias  [kv_heads*head_dim]
var qwen2 = architecture{
	hfClass: "Qwen2ForCausalLM",
	qkvBias: func(*Config) bool { return true },
}
