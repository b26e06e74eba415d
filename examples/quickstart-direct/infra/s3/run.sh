# The runner contract (ACTION, SCRIPTS_DIRECTORY, OUTPUTS_FILE, SECRET_OUTPUTS_FILE): apply or
# destroy the code, then write the outputs as two flat JSON objects.
set -eu
export HOME=/tmp
terraform init -input=false -no-color
if [ "$ACTION" = create ]; then
  terraform apply -auto-approve -input=false -no-color
  printf '{"bucket": "%s", "region": "%s"}\n' "$(terraform output -raw bucket)" "$(terraform output -raw region)" > "$OUTPUTS_FILE"
  printf '{"secret_key": "%s"}\n' "$(terraform output -raw secret_key)" > "$SECRET_OUTPUTS_FILE"
else
  terraform destroy -auto-approve -input=false -no-color
fi
