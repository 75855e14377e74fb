"""`cost_estimate`: what a service's pods cost per month, from their resource requests.

A pure tool (no side effect): the agent may call it while planning a service to tell the
requester what the replicas and requests they asked for will cost.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tools.spec import ToolContext, ToolSpec

HOURS_PER_MONTH = 730  # the average month, as cloud price lists count it


class CostArgs(BaseModel):
    replicas: int = Field(ge=1, le=1000, description="How many pods run at once.")
    cpu_millicores: int = Field(ge=10, le=64_000, description="CPU request per pod (250 = 0.25).")
    memory_mib: int = Field(ge=16, le=262_144, description="Memory request per pod, in MiB.")
    usd_per_vcpu_hour: float = Field(
        0.0445, gt=0, le=10, description="Price of one vCPU for one hour."
    )
    usd_per_gib_hour: float = Field(
        0.0049, gt=0, le=10, description="Price of one GiB of memory for one hour."
    )


class CostEstimate(BaseModel):
    monthly_usd: float = Field(description="The whole service, per month.")
    cpu_usd: float
    memory_usd: float
    per_replica_usd: float
    assumptions: str


def cost_estimate(args: CostArgs, ctx: ToolContext) -> CostEstimate:
    vcpus = args.replicas * args.cpu_millicores / 1000
    gibs = args.replicas * args.memory_mib / 1024
    cpu = vcpus * args.usd_per_vcpu_hour * HOURS_PER_MONTH
    memory = gibs * args.usd_per_gib_hour * HOURS_PER_MONTH
    total = cpu + memory
    return CostEstimate(
        monthly_usd=round(total, 2),
        cpu_usd=round(cpu, 2),
        memory_usd=round(memory, 2),
        per_replica_usd=round(total / args.replicas, 2),
        assumptions=(
            f"{HOURS_PER_MONTH} hours a month; requests, not limits; "
            f"${args.usd_per_vcpu_hour}/vCPU-hour and ${args.usd_per_gib_hour}/GiB-hour"
        ),
    )


COST_ESTIMATE = ToolSpec(
    name="cost_estimate",
    description=(
        "Estimate a service's monthly compute cost from its replicas and per-pod CPU and "
        "memory requests. Use it to tell the requester what a plan will cost."
    ),
    input_model=CostArgs,
    output_model=CostEstimate,
    func=cost_estimate,
    timeout=5.0,
    aliases=["estimate-cost", "monthly cost"],
)


def tools() -> list[ToolSpec]:
    """The entry point's object: every tool this package adds."""
    return [COST_ESTIMATE]
