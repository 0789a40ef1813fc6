#!/bin/sh
# Render /etc/nginx/templates/*.template into /etc/nginx/conf.d/, substituting only
# the variables defined in the environment (nginx's own $variables stay as they are).
set -eu
template_dir=/etc/nginx/templates
output_dir=/etc/nginx/conf.d
defined=$(printf '${%s} ' $(env | cut -d= -f1))
for template in "$template_dir"/*.template; do
  [ -e "$template" ] || continue
  output="$output_dir/$(basename "$template" .template)"
  echo "$0: rendering $template to $output"
  envsubst "$defined" <"$template" >"$output"
done
