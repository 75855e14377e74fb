"""The commented example of `.github/idp-copilot.yml`: printed by `idp-copilot init-repo`
and shown in the README; tests/test_repo_config.py checks that it validates.
"""

EXAMPLE_CONFIG = """\
# .github/idp-copilot.yml: how IDP Copilot works in this repository.
# Read from the default branch. Every key is optional; a key left out keeps its default.
# The organization's `.github` repository may hold this file too: its settings are the
# defaults here, and this file may override them but only make policy stricter.
# _extends: .github      # or other-repo, or other-repo:path/file.yml (same owner)

# Folder of a service's generated files (manifests, CI, docs); {name} is the service name.
manifests_path: services/{name}

# Values a request gets when it does not say.
defaults:
  language: python        # python, go, node or java; leave out to have the todo ask
  team: platform
  type: api               # api, worker or web

# Permission a command needs: read, triage, write, maintain or admin.
# Defaults: create-service, plan, retry, cancel, answer, set and upgrade need write; apply,
# deploy, unlock and create-repo need maintain; help, status, ask and feedback anyone. Commands
# can only be made
# stricter.
permissions:
  deploy: admin

# Tools that wait for `/idp apply` from someone allowed to run it.
approval_required:
  - create_k8s_namespace
  - deploy_to_staging
  - create_repository
  - create_git_repository_with_branch_protection

# Narrow the tools the agent may use (`idp-copilot tools` lists them); leave out for all.
# tools:
#   - generate_k8s_manifests
#   - setup_cicd_pipeline

# The staging namespace, kinds and Ingress domains are the operator's (IDP_STAGING_*).
# staging:
#   context: staging-eu   # one of the operator's IDP_STAGING_CONTEXTS; leave out for the default

# What the App's pull request must be before `/idp apply` runs anything: approved (an
# approving review by someone allowed to apply), mergeable (GitHub can merge it), checks
# (every required check green on its head). [] runs on approval alone.
apply_requirements:
  - mergeable

auto_deploy_on_merge: false   # deploy to staging when the App's pull request is merged
labels:                        # added to the App's pull requests
  - idp-copilot
draft_pull_requests: false
agent_system: default

reviewers:
  min_permission: write   # permission a reviewer needs for the App to act on their review

# The template set that renders new services: builtin, or one the operator lists
# (IDP_TEMPLATE_SETS). Leave out the version for the set's current one.
templates:
  set: builtin
  # version: "1.0.0"

# The least branch protection a repository made by `/idp create-repo` gets on its default
# branch (stricter rules the branch already has are kept).
branch_protection:
  required_reviews: 1
  # required_checks: [Test]   # leave out for the jobs of the service's CI workflow
  enforce_admins: true
  dismiss_stale_reviews: true
  require_code_owner_reviews: false
  required_linear_history: false

# A failed workflow run on the App's pull request is always shown in the todo. With a
# language model the App reads the failed job's log and pushes a validated fix commit, at
# most max_attempts (0 to 2) for a failing commit; without one, `/idp retry` re-runs it.
ci:
  fix: true
  max_attempts: 2
"""


def render_example_config() -> str:
    """A commented `.github/idp-copilot.yml` that validates: for the README and `init-repo`."""
    return EXAMPLE_CONFIG
