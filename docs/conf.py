# Sphinx configuration of the collection's docs site (`make docs`, scripts/docs.sh), after what
# `antsibull-docs sphinx-init` writes. The RST pages are generated into docs/build/rst.
project = 'clockwork.connections'
copyright = 'clockwork.connections contributors'
title = 'clockwork.connections'
html_short_title = 'clockwork.connections'

extensions = ['sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

# No intersphinx: the build reads nothing from the network. Every reference must resolve here.
default_role = 'any'
nitpicky = True

# The generated pages refer to Ansible's own docs (common_return_values, ansible.builtin plugins...):
# with no inventory to read, those become links to a search of docs.ansible.com. A reference to a
# page of this collection that is missing still fails the build (-W).
OWN = 'ansible_collections.clockwork.connections.'
ANSIBLE_DOCS_SEARCH = 'https://docs.ansible.com/projects/ansible/latest/search.html?q='


def _ansible_docs_link(app, env, node, contnode):
    from docutils import nodes
    from urllib.parse import quote
    target = node.get('reftarget', '')
    if node.get('refdomain') != 'std' or not target or target.startswith(OWN):
        return None
    link = nodes.reference('', '', internal=False, refuri=ANSIBLE_DOCS_SEARCH + quote(target))
    link.append(contnode)
    return link


def setup(app):
    app.connect('missing-reference', _ansible_docs_link)
