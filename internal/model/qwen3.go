package model

// qwen3 is Alibaba's Qwen3 (dense): a Llama block without q/k/v bias (unless
// attention_bias says otherwise) that normalises each query and key head with
// an RMSNorm over head_dim before the rotary embedding. head_dim is explicit
// in config.json and need not equal hidden_size / num_attention_heads.
//
//	model.layers.%d.self_attn.q_norm.weight  [head_dim]
//	model.layers.%d.self_attn.k_norm.weight  [head_dim]
var qwen3 = architecture{
	hfClass: "Qwen3ForCausalLM",
	qkvBias: func(c *Config) bool { return c.AttentionBias },
	qkNorm:  true,
}
