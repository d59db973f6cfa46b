from django import template

from vehicles.catalog import display_name
from vehicles.selectors import mask_vin

register = template.Library()
register.filter("mask_vin", mask_vin)
register.filter("make_name", display_name)
