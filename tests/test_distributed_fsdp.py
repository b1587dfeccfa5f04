"""FSDP shards the blocks the model itself names in `_no_split_modules`, whatever they are called;
an empty (meta) model gets memory with its ties kept and its weights and buffers from a sharded checkpoint."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from tunix_rt.train.distributed import DistContext, fsdp_blocks
from tunix_rt.train.sharded import (
    allocate,
    is_sharded,
    load_model_shards,
    non_persistent_buffers,
    save_shards,
)

TINY = {
    "vocab_size": 64,
    "num_hidden_layers": 3,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_attention_heads": 2,
}


@pytest.mark.parametrize(
    ("model", "block"),
    [
        (lambda: LlamaForCausalLM(LlamaConfig(**TINY)), "LlamaDecoderLayer"),
        (lambda: Qwen2ForCausalLM(Qwen2Config(**TINY)), "Qwen2DecoderLayer"),
        (lambda: GPT2LMHeadModel(GPT2Config(vocab_size=64, n_layer=3, n_embd=16, n_head=2)), "GPT2Block"),
    ],
)
def test_the_blocks_are_the_models_no_split_modules(model, block) -> None:
    blocks = fsdp_blocks(model())
    assert [type(b).__name__ for b in blocks] == [block] * 3


def test_a_peft_wrapper_finds_its_base_models_blocks() -> None:
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(
        LlamaForCausalLM(LlamaConfig(**TINY)), LoraConfig(r=2, target_modules=["q_proj"])
    )
    assert len(fsdp_blocks(wrapped)) == 3


class Stage(torch.nn.Module):  # a block whose name ends in neither "Block" nor "DecoderLayer"
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)


class Staged(torch.nn.Module):
    _no_split_modules = ("Stage",)

    def __init__(self) -> None:
        super().__init__()
        self.stages = torch.nn.ModuleList([Stage(), Stage()])
        self.head = torch.nn.Linear(4, 2)


class HeadBlock(torch.nn.Linear):  # named like a block, but the model does not say it is one
    pass


def test_names_come_from_the_model_not_from_a_suffix() -> None:
    model = Staged()
    model.extra = HeadBlock(2, 2)
    assert fsdp_blocks(model) == list(model.stages)
    assert fsdp_blocks(torch.nn.Sequential(HeadBlock(2, 2))) == []  # names none: sharded at the root only


@pytest.mark.parametrize(
    ("world_size", "strategy", "placed"),
    [(2, "fsdp", "cpu"), (2, "ddp", "meta"), (2, "auto", "meta"), (1, "fsdp", "meta")],
)
def test_only_fsdp_under_torchrun_leaves_placement_to_fully_shard(world_size, strategy, placed) -> None:
    # "meta" stands in for the accelerator: under FSDP the whole model must not be moved there
    # before fully_shard places it block by block; DDP and one process move it whole.
    model = Staged()
    DistContext(rank=0, world_size=world_size).place(model, torch.device("meta"), strategy)
    assert {p.device.type for p in model.parameters()} == {placed}


def empty_llama() -> torch.nn.Module:
    from tunix_rt.train.model import empty_model

    return empty_model(LlamaConfig(**TINY, tie_word_embeddings=True), "eager")


def test_an_empty_model_allocated_keeps_its_tied_head_tied() -> None:
    model = empty_llama()
    assert all(p.is_meta for p in model.parameters())
    allocate(model, "cpu")  # plain to_empty would give the head its own tensor
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert not any(p.is_meta for p in model.parameters())


def test_a_sharded_checkpoint_fills_an_empty_model_weights_and_buffers_alike(tmp_path) -> None:
    # One process (no process group): what a 2-rank FSDP run resumed on 1 process reads.
    torch.manual_seed(0)
    trained = LlamaForCausalLM(LlamaConfig(**TINY, tie_word_embeddings=True))
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-2)
    trained(input_ids=torch.arange(8)[None]).logits.sum().backward()
    optimizer.step()
    save_shards(trained, optimizer, tmp_path / "shards")
    assert is_sharded(tmp_path)

    model = empty_llama()
    allocate(model, "cpu")
    for buffer in non_persistent_buffers(model).values():
        buffer.fill_(float("nan"))  # to_empty leaves garbage; the checkpoint must replace it
    load_model_shards(model, tmp_path)
    assert set(non_persistent_buffers(model)) == {
        "model.rotary_emb.inv_freq",
        "model.rotary_emb.original_inv_freq",
    }
    for name, buffer in non_persistent_buffers(trained).items():
        torch.testing.assert_close(non_persistent_buffers(model)[name], buffer, rtol=0, atol=0)
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=0, atol=0)
    ids = torch.arange(8)[None]
    torch.testing.assert_close(model(input_ids=ids).logits, trained(input_ids=ids).logits)
